#include "wal/sync_policy.hpp"

#include <cassert>

namespace walrus::wal {

namespace {

constexpr uint64_t max_interval_ms = 3'600'000;

}  // namespace

result<sync_policy> sync_policy::parse(std::string_view text) {
  if (text == "always") return always();
  if (text == "group") return group();
  if (text == "none") return none();
  constexpr std::string_view prefix = "interval:";
  auto invalid = [&](const char* why) {
    return status{errc::invalid_argument, "sync policy \"" + std::string{text} + "\": " + why +
                                              " (expected always, group, none or interval:<ms>)"};
  };
  if (text.substr(0, prefix.size()) != prefix) return invalid("unknown policy");
  std::string_view digits = text.substr(prefix.size());
  if (digits.empty() || digits.size() > 7) return invalid("interval must be 1..3600000 ms");
  uint64_t ms = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return invalid("interval is not a decimal number");
    ms = ms * 10 + static_cast<uint64_t>(c - '0');
  }
  if (ms == 0 || ms > max_interval_ms) return invalid("interval must be 1..3600000 ms");
  return every(std::chrono::milliseconds{static_cast<int64_t>(ms)});
}

std::string sync_policy::to_string() const {
  switch (mode) {
    case kind::always: return "always";
    case kind::group: return "group";
    case kind::none: return "none";
    case kind::interval:
      assert(interval.count() > 0);
      return "interval:" + std::to_string(interval.count());
  }
  return "unknown";
}

}  // namespace walrus::wal
