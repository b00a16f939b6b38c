// libFuzzer target for the RESP request parser (apps/kv/resp.hpp). Feeds the
// input whole, in pieces whose sizes come from the input, and byte by byte,
// with small limits so that every limit is reachable, and checks that
//   * the requests and the final error do not depend on how input is split;
//   * every parsed request re-encoded as an array parses back to itself;
//   * buffering stays within one request plus one piece.
// Build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "apps/kv/resp.hpp"
#include "tests/fuzz/fuzz_targets.hpp"

namespace {

using namespace walrus::kv;

struct outcome {
  std::vector<std::vector<std::string>> requests;
  std::string error;  // empty when none
};

resp::parser_limits small_limits() {
  resp::parser_limits limits;
  limits.max_request_bytes = 4096;
  limits.max_arguments = 64;
  limits.max_inline_bytes = 256;
  return limits;
}

void check(bool condition) {
  WALRUS_FUZZ_CHECK(condition);
}

// Feeds `input` in pieces of the sizes `piece_size(i)` returns.
template <class PieceSize>
outcome parse(std::string_view input, PieceSize piece_size) {
  auto limits = small_limits();
  resp::request_parser parser{limits};
  outcome out;
  std::vector<std::string_view> args;
  size_t at = 0;
  for (size_t i = 0; at < input.size(); ++i) {
    size_t n = piece_size(i);
    if (n > input.size() - at) n = input.size() - at;
    parser.feed(input.substr(at, n));
    at += n;
    for (;;) {
      auto more = parser.next(args);
      if (!more) {
        out.error = more.error().message();
        return out;
      }
      if (!*more) break;
      check(!args.empty() && args.size() <= limits.max_arguments);
      out.requests.emplace_back(args.begin(), args.end());
    }
    check(parser.buffered_bytes() <= limits.max_request_bytes + limits.max_inline_bytes + n);
  }
  return out;
}

// A parsed request encoded as clients send it must parse back unchanged.
void check_round_trip(const std::vector<std::string>& request) {
  std::vector<std::string_view> views(request.begin(), request.end());
  std::string encoded;
  resp::append_command(encoded, views);
  resp::request_parser parser{small_limits()};
  parser.feed(encoded);
  std::vector<std::string_view> args;
  auto again = parser.next(args);
  if (!again.ok()) return;  // the encoding can exceed the limits the inline form met
  check(*again && args == views);
}

}  // namespace

int walrus_fuzz_resp(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto whole = parse(input, [&](size_t) { return input.size(); });
  uint8_t seed = size > 0 ? data[0] : 1;
  auto pieces = parse(input, [&](size_t i) { return 1 + (seed * (i + 7)) % 61; });
  check(pieces.requests == whole.requests && pieces.error == whole.error);
  if (size <= 512) {
    auto bytes = parse(input, [](size_t) { return size_t{1}; });
    check(bytes.requests == whole.requests && bytes.error == whole.error);
  }
  for (auto& request : whole.requests) check_round_trip(request);
  return 0;
}

#ifdef WALRUS_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  return walrus_fuzz_resp(d, n);
}
#endif
