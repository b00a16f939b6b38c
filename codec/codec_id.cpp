// Codec names, wire values, configuration strings and negotiation.
#include <algorithm>
#include <cassert>
#include <charconv>

#include "codec/codec.hpp"

namespace walrus::codec {

const char* to_string(codec_id id) noexcept {
  switch (id) {
    case codec_id::none: return "none";
    case codec_id::snappy: return "snappy";
    case codec_id::zstd: return "zstd";
  }
  return "unknown";
}

result<codec_id> codec_id_from_wire(uint32_t wire_value) {
  switch (wire_value) {
    case static_cast<uint32_t>(codec_id::none): return codec_id::none;
    case static_cast<uint32_t>(codec_id::snappy): return codec_id::snappy;
    case static_cast<uint32_t>(codec_id::zstd): return codec_id::zstd;
  }
  return status{errc::unsupported_codec, "unknown codec id " + std::to_string(wire_value)};
}

namespace {

result<int> parse_zstd_level(std::string_view text) {
  int level = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), level);
  bool in_range = level != 0 && level >= min_zstd_level && level <= max_zstd_level;
  if (ec != std::errc{} || end != text.data() + text.size() || !in_range)
    return status{errc::invalid_argument, "zstd level '" + std::string(text) +
                                              "' is not an integer in " +
                                              std::to_string(min_zstd_level) + "..-1 or 1.." +
                                              std::to_string(max_zstd_level)};
  return level;
}

}  // namespace

result<codec_config> parse_codec_config(std::string_view text) {
  auto colon = text.find(':');
  auto name = text.substr(0, colon);
  if (name == "zstd") {
    if (colon == std::string_view::npos) return codec_config{codec_id::zstd, default_zstd_level};
    auto level = parse_zstd_level(text.substr(colon + 1));
    if (!level) return std::move(level).error();
    return codec_config{codec_id::zstd, *level};
  }
  for (auto id : {codec_id::none, codec_id::snappy}) {
    if (name != to_string(id)) continue;
    if (colon != std::string_view::npos)
      return status{errc::invalid_argument,
                    "codec '" + std::string(text) + "': only zstd takes a level"};
    return codec_config{id, 0};
  }
  return status{errc::unsupported_codec,
                "unknown codec '" + std::string(text) + "'; expected none, snappy or zstd[:level]"};
}

std::string to_string(const codec_config& config) {
  if (config.id != codec_id::zstd) return to_string(config.id);
  return "zstd:" + std::to_string(config.level);
}

codec_id negotiate_codec(const std::vector<codec_id>& primary_preference,
                         const std::vector<codec_id>& replica_supported) noexcept {
  for (auto candidate : primary_preference)
    if (std::find(replica_supported.begin(), replica_supported.end(), candidate) !=
        replica_supported.end())
      return candidate;
  return codec_id::none;
}

}  // namespace walrus::codec
