#include "codec/codec.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "codec/implementations.hpp"

namespace walrus::codec {
namespace {

// `input` must not alias `output`: output is cleared or resized first.
bool disjoint(std::string_view input, const std::string& output) {
  auto in = reinterpret_cast<uintptr_t>(input.data());
  auto out = reinterpret_cast<uintptr_t>(output.data());
  return in + input.size() <= out || out + output.capacity() <= in || input.empty();
}

}  // namespace

status block_codec::compress(std::string_view input, std::string& output) {
  assert(disjoint(input, output));
  if (input.size() > max_input_bytes) {
    output.clear();
    return {errc::invalid_argument, std::string(to_string(id())) + ": input of " +
                                        std::to_string(input.size()) + " bytes exceeds the " +
                                        std::to_string(max_input_bytes) + "-byte maximum"};
  }
  do_compress(input, output);
  assert(output.size() <= compress_bound(input.size()));
  return ok_status();
}

status block_codec::decompress(std::string_view input, size_t expected_size, size_t max_output,
                               std::string& output) {
  assert(disjoint(input, output));
  output.clear();
  if (expected_size != unknown_size && expected_size > max_output)
    return {errc::size_limit_exceeded,
            std::string(to_string(id())) + ": expected size of " + std::to_string(expected_size) +
                " bytes exceeds the limit of " + std::to_string(max_output) + " bytes"};
  output_limit limit{std::min(expected_size, max_output), expected_size != unknown_size};
  if (auto st = do_decompress(input, limit, output); !st.ok()) {
    output.clear();
    return st;
  }
  assert(output.size() <= limit.bytes);
  if (expected_size != unknown_size && output.size() != expected_size) {
    auto produced = output.size();
    output.clear();
    return corrupt("produced " + std::to_string(produced) + " bytes, expected " +
                   std::to_string(expected_size));
  }
  return ok_status();
}

std::string block_codec::output_limit::describe() const {
  return from_expected ? "the expected " + std::to_string(bytes) + " bytes"
                       : "the limit of " + std::to_string(bytes) + " bytes";
}

status block_codec::too_large(std::string_view what, const output_limit& limit) const {
  return {errc::size_limit_exceeded, std::string(to_string(id())) + ": " + std::string(what) +
                                         ", more than " + limit.describe()};
}

status block_codec::corrupt(std::string_view cause) const {
  return {errc::decompression_failed, std::string(to_string(id())) + ": " + std::string(cause)};
}

result<std::unique_ptr<block_codec>> make_codec(codec_id id, int level) {
  switch (id) {
    case codec_id::none: return detail::make_none_codec();
    case codec_id::snappy: return detail::make_snappy_codec();
    case codec_id::zstd:
      if (level == 0 || level < min_zstd_level || level > max_zstd_level)
        return status{errc::invalid_argument, "zstd level " + std::to_string(level) +
                                                  " is outside " + std::to_string(min_zstd_level) +
                                                  "..-1 and 1.." + std::to_string(max_zstd_level)};
      return detail::make_zstd_codec(level);
  }
  return status{errc::unsupported_codec,
                "unknown codec id " + std::to_string(static_cast<unsigned>(id))};
}

result<std::unique_ptr<block_codec>> make_codec(const codec_config& config) {
  return make_codec(config.id, config.level);
}

}  // namespace walrus::codec
