#include <cassert>
#include <charconv>

#include "apps/kv/resp.hpp"

namespace walrus::kv::resp {

namespace {

bool has_line_break(std::string_view text) noexcept {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

// "<type><decimal>\r\n"
void append_header(std::string& out, char type, int64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  assert(ec == std::errc{});
  out.push_back(type);
  out.append(digits, static_cast<size_t>(end - digits));
  out.append("\r\n", 2);
}

}  // namespace

void append_simple(std::string& out, std::string_view text) {
  assert(!has_line_break(text));
  out.push_back('+');
  out.append(text.data(), text.size());
  out.append("\r\n", 2);
}

void append_error(std::string& out, std::string_view text) {
  assert(!has_line_break(text));
  out.push_back('-');
  out.append(text.data(), text.size());
  out.append("\r\n", 2);
}

void append_integer(std::string& out, int64_t value) {
  append_header(out, ':', value);
}

void append_bulk(std::string& out, std::string_view data) {
  append_header(out, '$', static_cast<int64_t>(data.size()));
  out.append(data.data(), data.size());
  out.append("\r\n", 2);
}

void append_null(std::string& out) {
  out.append("$-1\r\n", 5);
}

void append_array_header(std::string& out, size_t n) {
  append_header(out, '*', static_cast<int64_t>(n));
}

void append_null_array(std::string& out) {
  out.append("*-1\r\n", 5);
}

void append_command(std::string& out, const std::vector<std::string_view>& args) {
  append_array_header(out, args.size());
  for (auto arg : args) append_bulk(out, arg);
}

}  // namespace walrus::kv::resp
