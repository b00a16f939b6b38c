// Unsigned LEB128 varints (protobuf's encoding), written and read in one
// place for kv ops, kv snapshots and the in-place Batch parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace walrus {

inline size_t varint_size(uint64_t v) noexcept {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

inline void put_varint(std::string& out, uint64_t v) {
  char bytes[10];
  size_t n = 0;
  for (; v >= 0x80; v >>= 7) bytes[n++] = static_cast<char>((v & 0x7F) | 0x80);
  bytes[n++] = static_cast<char>(v);
  out.append(bytes, n);
}

// Reads a varint from data[pos..], advancing pos; false when it runs past
// the end or exceeds 64 bits.
inline bool get_varint(std::string_view data, size_t& pos, uint64_t& out) noexcept {
  out = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos == data.size()) return false;
    auto byte = static_cast<uint8_t>(data[pos++]);
    out |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return shift < 63 || byte <= 1;
  }
  return false;
}

}  // namespace walrus
