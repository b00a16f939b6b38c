// Unsigned LEB128 varints (protobuf's encoding), written in one place for the
// entries blob (docs/protocol.md §4), kv ops and kv snapshots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace walrus
