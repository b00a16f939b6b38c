// When the log makes appended records durable (docs/wal-format.md section 6).
// Parsed from and printed as "always", "group", "none" and "interval:<ms>".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace walrus::wal {

struct sync_policy {
  enum class kind : uint8_t {
    always,    // every append runs its own fdatasync before it returns
    group,     // concurrent appends share one fdatasync (leader/follower)
    interval,  // a background thread syncs every `interval`; appends don't wait
    none,      // never synced by the log; durable means "written to the OS"
  };

  kind mode = kind::group;
  std::chrono::milliseconds interval{0};  // > 0 exactly for kind::interval

  static sync_policy always() { return {kind::always, std::chrono::milliseconds{0}}; }
  static sync_policy group() { return {kind::group, std::chrono::milliseconds{0}}; }
  static sync_policy none() { return {kind::none, std::chrono::milliseconds{0}}; }
  static sync_policy every(std::chrono::milliseconds period) { return {kind::interval, period}; }

  // "always", "group", "none", "interval:10" (milliseconds, 1 .. 3600000).
  [[nodiscard]] static result<sync_policy> parse(std::string_view text);

  std::string to_string() const;

  friend bool operator==(const sync_policy& a, const sync_policy& b) {
    return a.mode == b.mode && a.interval == b.interval;
  }
  friend bool operator!=(const sync_policy& a, const sync_policy& b) { return !(a == b); }
};

}  // namespace walrus::wal
