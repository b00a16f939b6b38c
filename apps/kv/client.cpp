#include "apps/kv/client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/kv/resp.hpp"

namespace walrus::kv {

std::map<std::string, std::string> parse_info(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find("\r\n", at);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(at, end - at);
    auto colon = line.find(':');
    if (!line.empty() && line[0] != '#' && colon != std::string_view::npos)
      out[std::string(line.substr(0, colon))] = std::string(line.substr(colon + 1));
    at = end + 2;
  }
  return out;
}

namespace {

using steady = std::chrono::steady_clock;

int remaining_ms(steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1'000'000 ? 1'000'000 : static_cast<int>(left.count());
}

status errno_status(const char* what) {
  return status{errc::io_error, std::string{what} + ": " + std::strerror(errno)};
}

constexpr int max_depth = 16;

}  // namespace

std::string reply::to_string() const {
  switch (type) {
    case kind::simple: return text;
    case kind::error: return "(error) " + text;
    case kind::integer: return "(integer) " + std::to_string(integer);
    case kind::bulk: return "\"" + text + "\"";
    case kind::null: return "(nil)";
    case kind::array: {
      std::string out = "[";
      for (size_t i = 0; i < elements.size(); ++i) {
        if (i > 0) out += ", ";
        out += elements[i].to_string();
      }
      return out + "]";
    }
  }
  return "?";
}

result<std::unique_ptr<client>> client::connect(const std::string& host, uint16_t port,
                                                duration timeout) {
  auto deadline = steady::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return status{errc::io_error, "cannot resolve " + host + ": " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard{found, ::freeaddrinfo};
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_status("socket");
  std::unique_ptr<client> c{new client(fd)};
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string where = host + ":" + service;
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return status{errc::io_error, "connect " + where + ": " + std::strerror(errno)};
    pollfd p{fd, POLLOUT, 0};
    int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc == 0) return status{errc::timeout, "connect " + where + ": timed out"};
    if (rc < 0) return errno_status("poll");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return status{errc::io_error, "connect " + where + ": " + std::strerror(err)};
  }
  return c;
}

client::~client() {
  if (fd_ >= 0) ::close(fd_);
}

void client::queue(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  resp::append_command(out_, views);
}

void client::queue(std::initializer_list<std::string_view> args) {
  resp::append_command(out_, std::vector<std::string_view>(args));
}

void client::queue_raw(std::string_view bytes) {
  out_.append(bytes.data(), bytes.size());
}

status client::flush(duration timeout) {
  auto deadline = steady::now() + timeout;
  size_t sent = 0;
  while (sent < out_.size()) {
    auto n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      int rc = ::poll(&p, 1, remaining_ms(deadline));
      if (rc == 0) return status{errc::timeout, "send timed out"};
      if (rc < 0 && errno != EINTR) return errno_status("poll");
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return status{errc::closed, "connection closed by the server"};
    return errno_status("send");
  }
  out_.clear();
  return ok_status();
}

status client::fill(steady::time_point deadline) {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  char buf[64 * 1024];
  for (;;) {
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return ok_status();
    }
    if (n == 0) return status{errc::closed, "connection closed by the server"};
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return status{errc::closed, "connection reset by the server"};
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno_status("recv");
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc == 0) return status{errc::timeout, "no reply within the deadline"};
    if (rc < 0 && errno != EINTR) return errno_status("poll");
  }
}

result<bool> client::parse(size_t& pos, reply& out, int depth) const {
  if (depth > max_depth) return status{errc::malformed_frame, "reply nested too deeply"};
  auto eol = in_.find("\r\n", pos);
  if (eol == std::string::npos) return false;
  if (eol == pos) return status{errc::malformed_frame, "empty reply line"};
  char type = in_[pos];
  std::string line = in_.substr(pos + 1, eol - pos - 1);
  auto number = [&](int64_t& value) -> bool {
    if (line.empty()) return false;
    char* end = nullptr;
    errno = 0;
    value = std::strtoll(line.c_str(), &end, 10);
    return errno == 0 && end == line.c_str() + line.size();
  };
  switch (type) {
    case '+':
    case '-':
      out.type = type == '+' ? reply::kind::simple : reply::kind::error;
      out.text = std::move(line);
      pos = eol + 2;
      return true;
    case ':':
      out.type = reply::kind::integer;
      if (!number(out.integer)) return status{errc::malformed_frame, "bad integer reply: " + line};
      pos = eol + 2;
      return true;
    case '$': {
      int64_t len = 0;
      if (!number(len) || len < -1)
        return status{errc::malformed_frame, "bad bulk length: " + line};
      if (len == -1) {
        out.type = reply::kind::null;
        pos = eol + 2;
        return true;
      }
      auto start = eol + 2;
      if (in_.size() < start + static_cast<size_t>(len) + 2) return false;
      if (in_.compare(start + static_cast<size_t>(len), 2, "\r\n") != 0)
        return status{errc::malformed_frame, "bulk reply without CRLF"};
      out.type = reply::kind::bulk;
      out.text = in_.substr(start, static_cast<size_t>(len));
      pos = start + static_cast<size_t>(len) + 2;
      return true;
    }
    case '*': {
      int64_t count = 0;
      if (!number(count) || count < -1)
        return status{errc::malformed_frame, "bad array length: " + line};
      if (count == -1) {
        out.type = reply::kind::null;
        pos = eol + 2;
        return true;
      }
      size_t at = eol + 2;
      std::vector<reply> elements(static_cast<size_t>(count));
      for (auto& element : elements) {
        auto done = parse(at, element, depth + 1);
        if (!done.ok() || !*done) return done;
      }
      out.type = reply::kind::array;
      out.elements = std::move(elements);
      pos = at;
      return true;
    }
    default:
      return status{errc::malformed_frame,
                    std::string{"unexpected reply type byte '"} + type + "'"};
  }
}

result<reply> client::read_reply(duration timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    if (in_pos_ < in_.size()) {
      size_t pos = in_pos_;
      reply out;
      auto done = parse(pos, out, 0);
      if (!done.ok()) return done.error();
      if (*done) {
        in_pos_ = pos;
        return out;
      }
    }
    if (auto st = fill(deadline); !st.ok()) return st;
  }
}

result<reply> client::command(const std::vector<std::string>& args, duration timeout) {
  queue(args);
  if (auto st = flush(timeout); !st.ok()) return st;
  return read_reply(timeout);
}

result<reply> client::command(std::initializer_list<std::string_view> args, duration timeout) {
  queue(args);
  if (auto st = flush(timeout); !st.ok()) return st;
  return read_reply(timeout);
}

bool client::wait_closed(duration timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto st = fill(deadline);
    if (st.code() == errc::closed) return true;
    if (!st.ok()) return false;
    in_pos_ = in_.size();  // discard whatever still arrives
  }
}

}  // namespace walrus::kv
