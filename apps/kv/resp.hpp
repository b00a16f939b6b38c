// RESP2, the Redis serialisation protocol, as far as walrus-kv needs it:
// an incremental parser for what clients send (arrays of bulk strings, and
// inline commands such as `PING\r\n` typed into telnet) and an encoder for
// replies, appending into a caller-owned std::string.
//
// Bounds (checked next to the buffer, in request_parser): one request holds
// at most `max_request_bytes` (array and bulk headers, data and CRLFs) and
// `max_arguments` arguments; an inline line at most `max_inline_bytes`.
// The parser buffers at most one incomplete request plus the last piece
// fed, because feed() may only follow a next() that found no complete
// request (asserted). Malformed input and exceeded limits give a status
// whose message is the Redis reply text ("Protocol error: invalid bulk
// length"); the connection is then to be answered `-ERR <message>` and
// closed. The error is sticky.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.hpp"

namespace walrus::kv::resp {

struct parser_limits {
  size_t max_request_bytes = 64 * 1024 * 1024;  // one whole request as sent
  size_t max_arguments = 1024 * 1024;           // Redis's multibulk limit
  size_t max_inline_bytes = 64 * 1024;          // one inline line, CRLF included
};

class request_parser {
 public:
  explicit request_parser(parser_limits limits = {});

  // Buffers the next bytes of the stream. Precondition: the last next() (if
  // any) returned false or an error, i.e. every complete request before the
  // new bytes was taken out.
  void feed(std::string_view piece);

  // Takes the next complete request: true and `args` filled (views valid
  // until the next call of next() or feed()), false when more bytes are
  // needed, or an error (errc::malformed_frame, errc::frame_too_large).
  // An empty array (`*0`) and an empty inline line are skipped, as Redis does.
  [[nodiscard]] result<bool> next(std::vector<std::string_view>& args);

  // Bytes held (the unparsed rest of the stream).
  size_t buffered_bytes() const noexcept { return buffer_.size() - request_start_; }
  // Offset in the whole stream of the byte where an error was detected.
  uint64_t error_offset() const noexcept { return error_offset_; }
  const parser_limits& limits() const noexcept { return limits_; }

 private:
  enum class step : uint8_t { done, need_more, failed };

  step parse_array(std::vector<std::string_view>& args);
  step parse_inline(std::vector<std::string_view>& args);
  step read_count_line(size_t at, int64_t& value, size_t& line_end, bool bulk);
  step parse_bulk_header();
  step parse_bulk_data();
  step fail(errc code, std::string message, size_t at);
  void finish_request(size_t end);

  parser_limits limits_;
  std::string buffer_;
  size_t request_start_ = 0;                      // first byte of the request being parsed
  size_t pos_ = 0;                                // parse position, >= request_start_
  int64_t expected_args_ = -1;                    // -1: no array header parsed yet
  int64_t bulk_length_ = -1;                      // -1: the next bulk header is not parsed yet
  std::vector<std::pair<size_t, size_t>> spans_;  // offset, length of each argument
  std::string inline_args_;                       // unescaped inline arguments
  uint64_t stream_offset_ = 0;                    // stream offset of buffer_[0]
  uint64_t error_offset_ = 0;
  status error_;
  bool drained_ = true;
};

// Reply encoders. Simple strings and errors must not contain CR or LF
// (asserted); an error is written as given, so include the prefix: "ERR ...".
void append_simple(std::string& out, std::string_view text);
void append_error(std::string& out, std::string_view text);
void append_integer(std::string& out, int64_t value);
void append_bulk(std::string& out, std::string_view data);
void append_null(std::string& out);                    // $-1, the null bulk string
void append_array_header(std::string& out, size_t n);  // then n elements (nesting allowed)
void append_null_array(std::string& out);              // *-1

// A request as clients send it: an array of bulk strings.
void append_command(std::string& out, const std::vector<std::string_view>& args);

}  // namespace walrus::kv::resp
