#define CAF_SUITE kv_resp
#include "caf/test/unit_test.hpp"

#include <string>
#include <vector>

#include "apps/kv/resp.hpp"

using namespace walrus;
using namespace walrus::kv;
using namespace std::string_literals;

namespace {

using requests = std::vector<std::vector<std::string>>;

struct parsed {
  requests got;
  status error;
};

// Feeds `stream` cut at `cuts` (ascending offsets), taking every request.
parsed parse_pieces(std::string_view stream, const std::vector<size_t>& cuts,
                    resp::parser_limits limits = {}) {
  resp::request_parser parser{limits};
  parsed out;
  std::vector<std::string_view> args;
  size_t from = 0;
  auto drain = [&] {
    for (;;) {
      auto more = parser.next(args);
      if (!more) {
        out.error = more.error();
        return false;
      }
      if (!*more) return true;
      out.got.emplace_back(args.begin(), args.end());
    }
  };
  for (size_t i = 0; i <= cuts.size(); ++i) {
    size_t to = i < cuts.size() ? cuts[i] : stream.size();
    parser.feed(stream.substr(from, to - from));
    from = to;
    if (!drain()) break;
  }
  return out;
}

parsed parse_whole(std::string_view stream, resp::parser_limits limits = {}) {
  return parse_pieces(stream, {}, limits);
}

// The error message of a stream that must fail.
std::string error_of(std::string_view stream, resp::parser_limits limits = {}) {
  auto result = parse_whole(stream, limits);
  return result.error.ok() ? std::string{"<no error>"} : result.error.message();
}

std::string encode(const std::vector<std::string_view>& args) {
  std::string out;
  resp::append_command(out, args);
  return out;
}

// A pipelined stream mixing arrays (binary, empty and CRLF-bearing
// arguments), an empty array, inline commands and quoting.
const std::string pipelined = encode({"SET", "key:1", std::string_view{"a\0b\r\nc", 6}}) +
                              encode({"GET", "key:1"}) + "*0\r\n" + "PING\r\n" +
                              encode({"SET", "", ""}) + "\r\n" + "echo \"x y\\x41\" 'it s'\n" +
                              encode({"MGET", "a", "b", "c"});

const requests pipelined_expected = {
    {"SET", "key:1", std::string{"a\0b\r\nc", 6}},
    {"GET", "key:1"},
    {"PING"},
    {"SET", "", ""},
    {"echo", "x yA", "it s"},
    {"MGET", "a", "b", "c"},
};

}  // namespace

CAF_TEST(a pipelined stream parses the same at every single split) {
  auto whole = parse_whole(pipelined);
  CAF_REQUIRE(whole.error.ok());
  CAF_CHECK(whole.got == pipelined_expected);
  for (size_t cut = 0; cut <= pipelined.size(); ++cut) {
    auto result = parse_pieces(pipelined, {cut});
    CAF_CHECK(result.error.ok());
    if (result.got != pipelined_expected) CAF_FAIL("split at " << cut << " differs");
  }
}

CAF_TEST(a pipelined stream parses the same at every pair of splits and byte by byte) {
  for (size_t a = 0; a <= pipelined.size(); a += 3)
    for (size_t b = a; b <= pipelined.size(); ++b) {
      auto result = parse_pieces(pipelined, {a, b});
      if (!result.error.ok() || result.got != pipelined_expected)
        CAF_FAIL("splits at " << a << " and " << b << " differ");
    }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < pipelined.size(); ++i) every_byte.push_back(i);
  auto result = parse_pieces(pipelined, every_byte);
  CAF_CHECK(result.error.ok());
  CAF_CHECK(result.got == pipelined_expected);
}

CAF_TEST(inline commands follow Redis splitting and quoting) {
  CAF_CHECK(parse_whole("PING\r\n").got == requests{{"PING"}});
  CAF_CHECK(parse_whole("PING\n").got == requests{{"PING"}});
  CAF_CHECK(parse_whole("  set  a   b \r\n").got == (requests{{"set", "a", "b"}}));
  CAF_CHECK(parse_whole("\r\n\n  \r\nPING\r\n").got == requests{{"PING"}});
  CAF_CHECK(parse_whole("set k \"a\\r\\n\\t\\\"\\\\\"\r\n").got ==
            (requests{{"set", "k", "a\r\n\t\"\\"}}));
  CAF_CHECK(parse_whole("set k 'a\\'b\"c'\r\n").got == (requests{{"set", "k", "a'b\"c"}}));
  CAF_CHECK(parse_whole("set k \"\"\r\n").got == (requests{{"set", "k", ""}}));
  // Incomplete until the newline arrives.
  auto partial = parse_whole("PING");
  CAF_CHECK(partial.error.ok());
  CAF_CHECK(partial.got.empty());
}

CAF_TEST(unbalanced quotes in an inline command are a protocol error) {
  CAF_CHECK_EQUAL(error_of("set k \"abc\r\n"), "Protocol error: unbalanced quotes in request");
  CAF_CHECK_EQUAL(error_of("set k 'abc\r\n"), "Protocol error: unbalanced quotes in request");
  CAF_CHECK_EQUAL(error_of("set k \"a\"b\r\n"), "Protocol error: unbalanced quotes in request");
}

CAF_TEST(each class of malformed array gives its Redis error) {
  CAF_CHECK_EQUAL(error_of("*abc\r\n"), "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*-2\r\n"), "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*+1\r\n"), "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*\r\n"), "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*1\rX"), "Protocol error: invalid multibulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n:5\r\n"), "Protocol error: expected '$', got ':'");
  CAF_CHECK_EQUAL(error_of("*1\r\n\x01"), "Protocol error: expected '$', got '\\x01'");
  CAF_CHECK_EQUAL(error_of("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$99999999999999999999\r\n"),
                  "Protocol error: invalid bulk length");
  CAF_CHECK_EQUAL(error_of("*1\r\n$3\r\nabcXY"), "Protocol error: missing CRLF after bulk data");
  CAF_CHECK_EQUAL(error_of("*1\r\n$3\r\nabc\rX"), "Protocol error: missing CRLF after bulk data");
  CAF_CHECK_EQUAL(error_of("*" + std::string(40, '1')),
                  "Protocol error: too big mbulk count string");
  CAF_CHECK_EQUAL(error_of("*1\r\n$" + std::string(40, '1')),
                  "Protocol error: too big bulk count string");
}

CAF_TEST(an error is sticky and names its stream offset) {
  resp::request_parser parser;
  std::vector<std::string_view> args;
  parser.feed("PING\r\n*1\r\n$x\r\n");
  auto first = parser.next(args);
  CAF_REQUIRE(first.ok() && *first);
  auto bad = parser.next(args);
  CAF_REQUIRE(!bad.ok());
  CAF_CHECK(bad.error().code() == errc::malformed_frame);
  CAF_CHECK_EQUAL(parser.error_offset(), 11u);  // the 'x'
  parser.feed("PING\r\n");
  auto again = parser.next(args);
  CAF_REQUIRE(!again.ok());
  CAF_CHECK_EQUAL(again.error().message(), "Protocol error: invalid bulk length");
}

CAF_TEST(limits on request size arguments and inline length are enforced early) {
  resp::parser_limits small;
  small.max_request_bytes = 100;
  small.max_arguments = 4;
  small.max_inline_bytes = 16;
  // A bulk declared above the limit fails before its data arrives.
  auto big = parse_whole("*1\r\n$101\r\n", small);
  CAF_CHECK_EQUAL(big.error.message(), "Protocol error: invalid bulk length");
  CAF_CHECK(big.error.code() == errc::frame_too_large);
  // Bulks each within the limit but together above it.
  auto total = parse_whole("*2\r\n$40\r\n" + std::string(40, 'a') + "\r\n$60\r\n", small);
  CAF_CHECK_EQUAL(total.error.message(), "Protocol error: request exceeds 100 bytes");
  CAF_CHECK_EQUAL(error_of("*5\r\n", small), "Protocol error: invalid multibulk length");
  CAF_CHECK(parse_whole("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n", small).got.size() ==
            1);
  CAF_CHECK_EQUAL(error_of(std::string(16, 'a'), small), "Protocol error: too big inline request");
  CAF_CHECK_EQUAL(error_of("a b c d e\r\n", small), "Protocol error: invalid multibulk length");
  CAF_CHECK(parse_whole(std::string(14, 'a') + "\r\n", small).got.size() == 1);
  CAF_CHECK(parse_whole(std::string(15, 'a'), small).error.ok());  // may still end
}

CAF_TEST(buffering stays bounded by one request plus one piece) {
  resp::request_parser parser;
  std::vector<std::string_view> args;
  parser.feed("*2\r\n$3\r\nSET\r\n$1000000\r\n");
  auto none = parser.next(args);
  CAF_REQUIRE(none.ok() && !*none);
  std::string piece(4096, 'v');
  size_t sent = 0;
  while (sent + piece.size() <= 1000000) {
    parser.feed(piece);
    sent += piece.size();
    auto more = parser.next(args);
    CAF_REQUIRE(more.ok() && !*more);
    CAF_REQUIRE(parser.buffered_bytes() <= 1000000 + 64);
  }
  parser.feed(std::string(1000000 - sent, 'v') + "\r\nPING\r\n");
  auto done = parser.next(args);
  CAF_REQUIRE(done.ok() && *done);
  CAF_CHECK_EQUAL(args[1].size(), 1000000u);
  auto ping = parser.next(args);
  CAF_REQUIRE(ping.ok() && *ping);
  CAF_CHECK_EQUAL(args[0], "PING");
  auto drained = parser.next(args);
  CAF_REQUIRE(drained.ok() && !*drained);
  parser.feed("");
  CAF_CHECK_EQUAL(parser.buffered_bytes(), 0u);
}

CAF_TEST(replies encode every RESP2 type) {
  std::string out;
  resp::append_simple(out, "OK");
  resp::append_error(out, "ERR bad");
  resp::append_integer(out, -42);
  resp::append_bulk(out, std::string_view{"a\r\n\0", 4});
  resp::append_bulk(out, "");
  resp::append_null(out);
  resp::append_null_array(out);
  resp::append_array_header(out, 2);
  resp::append_array_header(out, 1);
  resp::append_integer(out, 1);
  resp::append_bulk(out, "x");
  CAF_CHECK_EQUAL(out,
                  "+OK\r\n-ERR bad\r\n:-42\r\n$4\r\na\r\n\0\r\n$0\r\n\r\n$-1\r\n*-1\r\n"
                  "*2\r\n*1\r\n:1\r\n$1\r\nx\r\n"s);
  CAF_CHECK_EQUAL(encode({"GET", "k"}), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}
