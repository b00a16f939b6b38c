// A small blocking RESP2 client for walrus-kv: what `walrus-kv demo` and the
// multi-process tests use to talk to real servers. One TCP connection, no
// threads; every call takes a deadline, so a dead or silent server gives an
// error instead of a hang. Commands can be pipelined: queue() several, then
// flush() and read_reply() each.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include <string_view>

#include "base/status.hpp"

namespace walrus::kv {

// One RESP2 reply.
struct reply {
  enum class kind : uint8_t { simple, error, integer, bulk, null, array };

  kind type = kind::null;
  std::string text;  // simple, error, bulk
  int64_t integer = 0;
  std::vector<reply> elements;  // array

  bool is_error() const noexcept { return type == kind::error; }
  // "OK", "(error) ERR ...", "(integer) 3", "\"value\"", "(nil)", "[a, b]": for messages.
  std::string to_string() const;
};

// The "field:value" lines of an INFO reply (section headers skipped).
std::map<std::string, std::string> parse_info(std::string_view text);

class client {
 public:
  using duration = std::chrono::milliseconds;

  // Connects to host:port (numeric IPv4 or a name) within `timeout`.
  [[nodiscard]] static result<std::unique_ptr<client>> connect(const std::string& host,
                                                               uint16_t port,
                                                               duration timeout = duration{5000});

  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Encodes one command into the output buffer (sent by flush()).
  void queue(const std::vector<std::string>& args);
  void queue(std::initializer_list<std::string_view> args);
  // Raw bytes (tests send malformed input this way).
  void queue_raw(std::string_view bytes);
  // Sends everything queued.
  [[nodiscard]] status flush(duration timeout = duration{10000});
  // Reads the next reply; errc::closed when the server closed the
  // connection, errc::timeout past the deadline, malformed_frame on garbage.
  [[nodiscard]] result<reply> read_reply(duration timeout = duration{10000});

  // queue + flush + read_reply.
  [[nodiscard]] result<reply> command(const std::vector<std::string>& args,
                                      duration timeout = duration{10000});
  [[nodiscard]] result<reply> command(std::initializer_list<std::string_view> args,
                                      duration timeout = duration{10000});

  // True once the server closed the connection and every byte was read.
  [[nodiscard]] bool wait_closed(duration timeout = duration{5000});

 private:
  explicit client(int fd) : fd_(fd) {}
  // Parses one reply from in_ at pos; false when more bytes are needed.
  result<bool> parse(size_t& pos, reply& out, int depth) const;
  // Reads more bytes into in_; errors as read_reply.
  [[nodiscard]] status fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string out_;
  std::string in_;
  size_t in_pos_ = 0;
};

}  // namespace walrus::kv
