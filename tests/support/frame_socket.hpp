// Plain blocking loopback sockets that speak the replication protocol's
// frames by hand, for tests that play a misbehaving peer: a fake replica
// against a real listener, or a fake primary (listening_socket) that a real
// connector dials. Every wait has a deadline; sockets close with the object.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/wire.hpp"
#include "codec/frame.hpp"

namespace walrus::testing {

class frame_socket {
 public:
  using clock = std::chrono::steady_clock;

  explicit frame_socket(int fd) : fd_(fd) {}
  ~frame_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  frame_socket(frame_socket&& other) noexcept
      : fd_(other.fd_),
        decoder_(std::move(other.decoder_)),
        frames_(std::move(other.frames_)),
        closed_(other.closed_),
        failed_(other.failed_) {
    other.fd_ = -1;
  }
  frame_socket& operator=(frame_socket&&) = delete;
  frame_socket(const frame_socket&) = delete;
  frame_socket& operator=(const frame_socket&) = delete;

  // A connection to 127.0.0.1:port (valid() false when refused).
  static frame_socket connect(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      fd = -1;
    }
    return frame_socket{fd};
  }

  bool valid() const { return fd_ >= 0; }
  // The peer closed its side (end of stream seen).
  bool closed() const { return closed_; }
  // Bytes arrived that are not a frame.
  bool failed() const { return failed_; }

  bool send_bytes(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool send_frame(const wire::Frame& frame) {
    std::string out;
    codec::frame_encoder encoder{codec::default_max_frame_bytes};
    if (!wire_format::encode_frame(frame, encoder, out).ok()) return false;
    return send_bytes(out);
  }

  // Half-close: the peer sees end of stream, we can still read its answer.
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // The next frame that `want` accepts (frames it refuses are dropped), or
  // nullopt when `limit` passes or the peer closes first. `idle` runs about
  // every `idle_every` while waiting (to send heartbeats, say).
  std::optional<wire::Frame> read_frame(
      std::chrono::milliseconds limit,
      const std::function<bool(const wire::Frame&)>& want = nullptr,
      const std::function<void()>& idle = nullptr,
      std::chrono::milliseconds idle_every = std::chrono::milliseconds(100)) {
    auto deadline = clock::now() + limit;
    auto next_idle = clock::now() + idle_every;
    for (;;) {
      while (!frames_.empty()) {
        auto frame = std::move(frames_.front());
        frames_.pop_front();
        if (!want || want(frame)) return frame;
      }
      if (closed_ || failed_ || clock::now() >= deadline) return std::nullopt;
      if (idle && clock::now() >= next_idle) {
        idle();
        next_idle = clock::now() + idle_every;
      }
      receive_some(std::chrono::milliseconds(20));
    }
  }

  // Every frame until the peer closes or `limit` passes (then closed() is
  // false).
  std::vector<wire::Frame> read_until_closed(std::chrono::milliseconds limit) {
    std::vector<wire::Frame> out;
    auto deadline = clock::now() + limit;
    while (!closed_ && !failed_ && clock::now() < deadline)
      receive_some(std::chrono::milliseconds(20));
    for (auto& f : frames_) out.push_back(std::move(f));
    frames_.clear();
    return out;
  }

 private:
  void receive_some(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return;
    char buf[64 * 1024];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed_ = true;
      return;
    }
    decoder_.feed(buf, static_cast<size_t>(n));
    for (;;) {
      auto body = decoder_.next();
      if (!body) {
        failed_ = true;
        return;
      }
      if (!*body) return;
      wire::Frame frame;
      if (!wire_format::decode_frame(**body, frame).ok()) {
        failed_ = true;
        return;
      }
      frames_.push_back(std::move(frame));
    }
  }

  int fd_ = -1;
  codec::frame_decoder decoder_{codec::default_max_frame_bytes};
  std::deque<wire::Frame> frames_;
  bool closed_ = false;
  bool failed_ = false;
};

// A listening socket on 127.0.0.1 with a port the OS picks: a fake primary.
class listening_socket {
 public:
  listening_socket() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 8) == 0 && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port_ = ntohs(addr.sin_port);
  }
  ~listening_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  listening_socket(const listening_socket&) = delete;
  listening_socket& operator=(const listening_socket&) = delete;

  // 0 when binding failed.
  uint16_t port() const { return port_; }

  // The next connection, or an invalid socket when `limit` passes first.
  frame_socket accept(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return frame_socket{-1};
    return frame_socket{::accept(fd_, nullptr, nullptr)};
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace walrus::testing
