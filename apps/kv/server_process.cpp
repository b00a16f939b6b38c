#include "apps/kv/server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace walrus::kv {

namespace {

using steady = std::chrono::steady_clock;

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string read_from(const std::string& path, uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The port after `marker` ("listening on 127.0.0.1:6379" -> 6379), or 0.
uint16_t port_after(const std::string& text, const std::string& marker) {
  auto at = text.find(marker);
  if (at == std::string::npos) return 0;
  auto end = text.find_first_of(" ,\n", at + marker.size());
  auto address = text.substr(at + marker.size(), end - at - marker.size());
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  auto value = std::strtoul(address.c_str() + colon + 1, nullptr, 10);
  return value > 0 && value <= 65535 ? static_cast<uint16_t>(value) : 0;
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

}  // namespace

std::string self_executable() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

node_process::~node_process() {
  if (pid_ > 0 && exit_code_ < 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

node_process::node_process(node_process&& other) noexcept {
  *this = std::move(other);
}

node_process& node_process::operator=(node_process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = std::exchange(other.exit_code_, -1);
    resp_port_ = other.resp_port_;
    repl_port_ = other.repl_port_;
    metrics_port_ = other.metrics_port_;
    log_path_ = std::move(other.log_path_);
    log_offset_ = other.log_offset_;
  }
  return *this;
}

result<node_process> node_process::spawn(const std::string& program,
                                         const std::vector<std::string>& args,
                                         const std::string& log_path) {
  node_process p;
  p.log_path_ = log_path;
  p.log_offset_ = file_size(log_path);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return status{errc::io_error, "cannot open " + log_path + ": " + std::strerror(errno)};
  std::vector<std::string> argv_strings;
  argv_strings.push_back(program);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return status{errc::io_error, std::string{"fork: "} + std::strerror(errno)};
  }
  if (pid == 0) {
    // The child: die with the parent, default signal handling, output to the log.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(program.c_str(), argv.data());
    const char* msg = "walrus-kv: exec failed\n";
    auto ignored = ::write(2, msg, std::strlen(msg));
    (void)ignored;
    ::_exit(127);
  }
  ::close(log_fd);
  p.pid_ = pid;
  return p;
}

result<node_process> node_process::start(const std::string& program,
                                         const std::vector<std::string>& args,
                                         const std::string& log_path,
                                         std::chrono::milliseconds timeout) {
  auto spawned = spawn(program, args, log_path);
  if (!spawned) return spawned;
  node_process p = std::move(*spawned);
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto text = read_from(log_path, p.log_offset_);
    auto at = text.find(" listening on ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      p.resp_port_ = port_after(text, "listening on ");
      p.repl_port_ = port_after(text, "replication on ");
      p.metrics_port_ = port_after(text, "metrics on ");
      if (p.resp_port_ != 0) return p;
    }
    if (!p.running())
      return status{errc::io_error, "exited with code " + std::to_string(p.exit_code_) +
                                        " before it was ready: " + p.log_tail(5)};
    if (steady::now() >= deadline)
      return status{errc::timeout, "not ready within " + std::to_string(timeout.count()) +
                                       " ms: " + p.log_tail(5)};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool node_process::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int st = 0;
  auto r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(st);
    return false;
  }
  return r == 0;
}

void node_process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

result<int> node_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  while (running()) {
    if (steady::now() >= deadline)
      return status{errc::timeout, "pid " + std::to_string(pid_) + " still running after " +
                                       std::to_string(timeout.count()) + " ms"};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (exit_code_ < 0) return status{errc::invalid_argument, "no child process"};
  return exit_code_;
}

result<int> node_process::stop(std::chrono::milliseconds timeout) {
  signal(SIGTERM);
  auto code = wait(timeout);
  if (code) return code;
  signal(SIGKILL);
  auto killed = wait(std::chrono::seconds(5));
  if (!killed) return killed;
  return status{errc::timeout, "did not stop within " + std::to_string(timeout.count()) +
                                   " ms after SIGTERM; killed"};
}

std::string node_process::log_tail(size_t lines) const {
  auto text = read_from(log_path_, log_offset_);
  std::vector<std::string> all;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (end > at) all.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  std::string tail;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    tail += (tail.empty() ? "" : " | ") + all[i];
  return tail.empty() ? "(no output)" : tail;
}

}  // namespace walrus::kv
