// walrus-kv nodes as child processes: what `walrus-kv demo` and the
// multi-process tests use. A node's stdout and stderr are appended to a log
// file; start() waits for its ready line and reads the ports from it
// ("walrus-kv: primary listening on 127.0.0.1:P (RESP), replication on
// 127.0.0.1:R, ..."). Children get SIGKILL when their parent dies
// (PR_SET_PDEATHSIG), and a node_process that is destroyed while its child
// runs kills it, so nothing outlives a failed demo or test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace walrus::kv {

class node_process {
 public:
  node_process() = default;
  ~node_process();
  node_process(node_process&& other) noexcept;
  node_process& operator=(node_process&& other) noexcept;
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  // Starts `program args...` (output appended to `log_path`) without waiting.
  [[nodiscard]] static result<node_process> spawn(const std::string& program,
                                                  const std::vector<std::string>& args,
                                                  const std::string& log_path);
  // Starts `program args...` and waits until it printed its ready line, it
  // exited (an error with its last log lines), or `timeout` passed.
  [[nodiscard]] static result<node_process> start(
      const std::string& program, const std::vector<std::string>& args, const std::string& log_path,
      std::chrono::milliseconds timeout = std::chrono::seconds(20));

  pid_t pid() const noexcept { return pid_; }
  bool running();
  uint16_t resp_port() const noexcept { return resp_port_; }
  uint16_t repl_port() const noexcept { return repl_port_; }
  uint16_t metrics_port() const noexcept { return metrics_port_; }  // 0: no --metrics-port
  const std::string& log_path() const noexcept { return log_path_; }

  // Sends `sig` (no-op once the child was reaped).
  void signal(int sig);
  // Waits for the child to exit: its exit code, 128 + signal when killed by
  // one, or errc::timeout.
  [[nodiscard]] result<int> wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL: the exit code.
  [[nodiscard]] result<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // The last `lines` lines of the log written since start().
  std::string log_tail(size_t lines = 10) const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  uint16_t resp_port_ = 0;
  uint16_t repl_port_ = 0;
  uint16_t metrics_port_ = 0;
  std::string log_path_;
  uint64_t log_offset_ = 0;  // the log's size when the child started
};

// The executable of the running process (/proc/self/exe).
std::string self_executable();

}  // namespace walrus::kv
