// Bitmaps as strings of bytes, least significant bit first: bit i is bit
// i % 8 of byte i / 8. Commit flags travel in this form (docs/protocol.md §4)
// and the WAL takes them in the same form.
#pragma once

#include <cstdint>
#include <string_view>

namespace walrus {

inline bool test_bit(std::string_view bits, uint64_t i) noexcept {
  return i / 8 < bits.size() && ((static_cast<uint8_t>(bits[i / 8]) >> (i % 8)) & 1u) != 0;
}

}  // namespace walrus
