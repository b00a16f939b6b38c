#include <cassert>
#include <cstring>

#include "apps/kv/resp.hpp"

namespace walrus::kv::resp {

namespace {

// "*<count>\r\n" and "$<length>\r\n": sign, 19 digits, CR fit easily.
constexpr size_t max_count_line_bytes = 32;

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\0';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict decimal: optional '-', 1 to 19 digits, no overflow.
bool parse_count(std::string_view text, int64_t& out) noexcept {
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 19) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > static_cast<uint64_t>(INT64_MAX)) return false;
  out = negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
  return true;
}

std::string printable(char c) {
  auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7F) return std::string(1, c);
  const char* digits = "0123456789abcdef";
  return std::string{'\\', 'x', digits[byte >> 4], digits[byte & 0xF]};
}

// One escape inside double quotes, as Redis's sdssplitargs reads it; `i`
// is at the backslash and moves past the escape.
void unescape_double_quoted(std::string_view line, size_t& i, std::string& out) {
  assert(line[i] == '\\' && i + 1 < line.size());
  if (line[i + 1] == 'x' && i + 3 < line.size() && hex_value(line[i + 2]) >= 0 &&
      hex_value(line[i + 3]) >= 0) {
    out.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
    i += 4;
    return;
  }
  char c = line[i + 1];
  switch (c) {
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'b': c = '\b'; break;
    case 'a': c = '\a'; break;
    default: break;
  }
  out.push_back(c);
  i += 2;
}

// Reads one quoted part starting after its opening quote; false when the
// quotes do not balance or the closing quote is not followed by a space.
bool read_quoted(std::string_view line, size_t& i, char quote, std::string& out) {
  for (;;) {
    if (i == line.size()) return false;
    char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      if (quote == '"') {
        unescape_double_quoted(line, i, out);
        continue;
      }
      if (line[i + 1] == '\'') {
        out.push_back('\'');
        i += 2;
        continue;
      }
    }
    if (c == quote) {
      ++i;
      return i == line.size() || is_space(line[i]);
    }
    out.push_back(c);
    ++i;
  }
}

// Splits an inline line like Redis's sdssplitargs: whitespace separates,
// "..." with C escapes and '...' quote. Unescaped bytes go to `storage`.
bool split_inline(std::string_view line, std::string& storage,
                  std::vector<std::pair<size_t, size_t>>& spans) {
  storage.clear();
  storage.reserve(line.size());
  spans.clear();
  size_t i = 0;
  for (;;) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) return true;
    size_t start = storage.size();
    while (i < line.size() && !is_space(line[i])) {
      char c = line[i++];
      if (c == '"' || c == '\'') {
        if (!read_quoted(line, i, c, storage)) return false;
        break;
      }
      storage.push_back(c);
    }
    spans.emplace_back(start, storage.size() - start);
  }
}

}  // namespace

request_parser::request_parser(parser_limits limits) : limits_(limits) {
  assert(limits_.max_request_bytes > 0);
  assert(limits_.max_arguments > 0);
  assert(limits_.max_inline_bytes > 2);
}

void request_parser::feed(std::string_view piece) {
  assert(drained_ && "feed() before next() returned false: unbounded buffering");
  drained_ = false;
  if (!error_.ok()) return;
  if (request_start_ > 0) {
    // Drop the requests already taken; only the incomplete one moves.
    buffer_.erase(0, request_start_);
    pos_ -= request_start_;
    for (auto& span : spans_) span.first -= request_start_;
    stream_offset_ += request_start_;
    request_start_ = 0;
    // Give back the memory of one huge request once it is gone.
    if (buffer_.capacity() > 1024 * 1024 && buffer_.size() < buffer_.capacity() / 4)
      buffer_.shrink_to_fit();
  }
  buffer_.append(piece.data(), piece.size());
  assert(pos_ <= buffer_.size());
}

result<bool> request_parser::next(std::vector<std::string_view>& args) {
  if (!error_.ok()) {
    drained_ = true;
    return error_;
  }
  for (;;) {
    if (request_start_ == buffer_.size()) {
      drained_ = true;
      return false;
    }
    auto outcome = buffer_[request_start_] == '*' ? parse_array(args) : parse_inline(args);
    if (outcome == step::need_more) {
      drained_ = true;
      return false;
    }
    if (outcome == step::failed) {
      drained_ = true;
      return error_;
    }
    if (!args.empty()) return true;
  }
}

request_parser::step request_parser::parse_array(std::vector<std::string_view>& args) {
  if (expected_args_ < 0) {
    int64_t count = 0;
    size_t line_end = 0;
    auto outcome = read_count_line(request_start_ + 1, count, line_end, false);
    if (outcome != step::done) return outcome;
    if (count < 0 || static_cast<uint64_t>(count) > limits_.max_arguments)
      return fail(count < 0 ? errc::malformed_frame : errc::frame_too_large,
                  "Protocol error: invalid multibulk length", request_start_ + 1);
    pos_ = line_end;
    expected_args_ = count;
    bulk_length_ = -1;
    spans_.clear();
  }
  while (spans_.size() < static_cast<uint64_t>(expected_args_)) {
    if (bulk_length_ < 0) {
      auto outcome = parse_bulk_header();
      if (outcome != step::done) return outcome;
    }
    auto outcome = parse_bulk_data();
    if (outcome != step::done) return outcome;
  }
  args.clear();
  for (auto [offset, length] : spans_) args.emplace_back(buffer_.data() + offset, length);
  finish_request(pos_);
  return step::done;
}

request_parser::step request_parser::parse_bulk_header() {
  assert(bulk_length_ < 0);
  if (pos_ == buffer_.size()) return step::need_more;
  if (buffer_[pos_] != '$')
    return fail(errc::malformed_frame,
                "Protocol error: expected '$', got '" + printable(buffer_[pos_]) + "'", pos_);
  int64_t length = 0;
  size_t line_end = 0;
  auto outcome = read_count_line(pos_ + 1, length, line_end, true);
  if (outcome != step::done) return outcome;
  if (length < 0) return fail(errc::malformed_frame, "Protocol error: invalid bulk length", pos_);
  auto request_bytes = (line_end - request_start_) + static_cast<uint64_t>(length) + 2;
  if (static_cast<uint64_t>(length) > limits_.max_request_bytes)
    return fail(errc::frame_too_large, "Protocol error: invalid bulk length", pos_);
  if (request_bytes > limits_.max_request_bytes)
    return fail(
        errc::frame_too_large,
        "Protocol error: request exceeds " + std::to_string(limits_.max_request_bytes) + " bytes",
        pos_);
  bulk_length_ = length;
  pos_ = line_end;
  return step::done;
}

request_parser::step request_parser::parse_bulk_data() {
  assert(bulk_length_ >= 0);
  auto length = static_cast<size_t>(bulk_length_);
  if (buffer_.size() - pos_ < length + 2) return step::need_more;
  if (buffer_[pos_ + length] != '\r' || buffer_[pos_ + length + 1] != '\n')
    return fail(errc::malformed_frame, "Protocol error: missing CRLF after bulk data",
                pos_ + length);
  spans_.emplace_back(pos_, length);
  pos_ += length + 2;
  bulk_length_ = -1;
  return step::done;
}

request_parser::step request_parser::read_count_line(size_t at, int64_t& value, size_t& line_end,
                                                     bool bulk) {
  assert(at <= buffer_.size());
  auto available = buffer_.size() - at;
  auto scan = available < max_count_line_bytes ? available : max_count_line_bytes;
  auto* cr = static_cast<const char*>(std::memchr(buffer_.data() + at, '\r', scan));
  const char* invalid =
      bulk ? "Protocol error: invalid bulk length" : "Protocol error: invalid multibulk length";
  if (cr == nullptr) {
    if (available < max_count_line_bytes) return step::need_more;
    return fail(errc::malformed_frame,
                bulk ? "Protocol error: too big bulk count string"
                     : "Protocol error: too big mbulk count string",
                at);
  }
  auto cr_at = static_cast<size_t>(cr - buffer_.data());
  if (cr_at + 1 == buffer_.size()) return step::need_more;
  if (buffer_[cr_at + 1] != '\n') return fail(errc::malformed_frame, invalid, cr_at + 1);
  if (!parse_count(std::string_view{buffer_.data() + at, cr_at - at}, value))
    return fail(errc::malformed_frame, invalid, at);
  line_end = cr_at + 2;
  return step::done;
}

request_parser::step request_parser::parse_inline(std::vector<std::string_view>& args) {
  auto available = buffer_.size() - request_start_;
  auto scan = available < limits_.max_inline_bytes ? available : limits_.max_inline_bytes;
  auto* nl = static_cast<const char*>(std::memchr(buffer_.data() + request_start_, '\n', scan));
  if (nl == nullptr) {
    if (available < limits_.max_inline_bytes) return step::need_more;
    return fail(errc::frame_too_large, "Protocol error: too big inline request", request_start_);
  }
  auto nl_at = static_cast<size_t>(nl - buffer_.data());
  std::string_view line{buffer_.data() + request_start_, nl_at - request_start_};
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!split_inline(line, inline_args_, spans_))
    return fail(errc::malformed_frame, "Protocol error: unbalanced quotes in request",
                request_start_);
  if (spans_.size() > limits_.max_arguments)
    return fail(errc::frame_too_large, "Protocol error: invalid multibulk length", request_start_);
  args.clear();
  for (auto [offset, length] : spans_) args.emplace_back(inline_args_.data() + offset, length);
  spans_.clear();
  finish_request(nl_at + 1);
  return step::done;
}

request_parser::step request_parser::fail(errc code, std::string message, size_t at) {
  error_ = status{code, std::move(message)};
  error_offset_ = stream_offset_ + at;
  return step::failed;
}

void request_parser::finish_request(size_t end) {
  assert(end <= buffer_.size());
  request_start_ = end;
  pos_ = end;
  expected_args_ = -1;
  bulk_length_ = -1;
}

}  // namespace walrus::kv::resp
