// Wall-clock time as the protocol and status output carry it: microseconds
// since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace walrus {

inline uint64_t wall_clock_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace walrus
