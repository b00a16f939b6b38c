// The byte format of a walrus-kv snapshot (docs/kv.md, "Snapshot format"),
// the same in a file and on the wire (SnapshotChunk data, concatenated).
// All integers little endian.
//
//   header   magic "WALRUSKV" | version u32 = 1 | flags u32 = 0 |
//            sequence u64 | crc32c u32 of the 24 bytes before it
//   block*   crc32c u32 | length u32 | type u8 | payload[length]
//            (crc32c covers length, type and payload)
//   type 1   records: (key_len varint | value_len varint |
//                      expire_at_ms varint | key | value)*, whole records only
//   type 2   trailer, the last block: record_count u64 | content hash u64
//            (sum of record_hash over all records)
//   type >= 0x80: skipped by a reader that does not know it; any other
//   unknown type is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/varint.hpp"

namespace walrus::kv::snapshot_format {

constexpr char magic[8] = {'W', 'A', 'L', 'R', 'U', 'S', 'K', 'V'};
constexpr uint32_t version = 1;
constexpr size_t header_bytes = 28;
constexpr size_t block_header_bytes = 9;
constexpr uint8_t block_records = 1;
constexpr uint8_t block_trailer = 2;
constexpr uint8_t block_ignorable = 0x80;  // bit set: skip when unknown
constexpr size_t trailer_bytes = 16;

inline void put_u32(std::string& out, uint32_t v) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  out.append(bytes, 4);
}

inline void put_u64(std::string& out, uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  out.append(bytes, 8);
}

inline uint32_t get_u32(const char* p) noexcept {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline uint64_t get_u64(const char* p) noexcept {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline size_t record_bytes(size_t key, size_t value, uint64_t expire) noexcept {
  return varint_size(key) + varint_size(value) + varint_size(expire) + key + value;
}

}  // namespace walrus::kv::snapshot_format
