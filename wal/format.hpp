// The on-disk format of the write-ahead log: segment file names, the segment
// header and the record framing. docs/wal-format.md is the normative grammar;
// this header holds the same constants and the encode/decode functions every
// other part of wal/ goes through, so the bytes are defined in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace walrus::wal {

// -- segment files ------------------------------------------------------------

constexpr uint32_t segment_magic = 0x474F4C57;  // the bytes "WLOG"
constexpr uint16_t format_version = 1;
constexpr size_t segment_header_bytes = 20;
constexpr size_t segment_name_digits = 20;
// The largest first sequence a segment name may state (2^63): beyond any real
// log, and far enough below 2^64 that sequence arithmetic never wraps.
constexpr uint64_t max_first_sequence = uint64_t{1} << 63;
constexpr std::string_view segment_suffix = ".wal";

// "00000000000000000001.wal" for first_sequence 1.
std::string segment_file_name(uint64_t first_sequence);

// The first sequence encoded in `name`, or nullopt when `name` is not exactly
// 20 decimal digits followed by ".wal" (or encodes 0 or above max_first_sequence).
std::optional<uint64_t> parse_segment_file_name(std::string_view name);

// Writes the 20-byte header for a segment starting at `first_sequence`.
void encode_segment_header(uint64_t first_sequence, char* out);

// Checks magic, CRC and version of the `segment_header_bytes` at `in` and
// returns the first sequence. Errors say what was found and expected; the
// caller adds file and offset. An unknown version is errc::version_mismatch.
[[nodiscard]] result<uint64_t> decode_segment_header(const char* in);

// -- records -------------------------------------------------------------------

constexpr size_t record_header_bytes = 17;  // crc u32, length u32, flags u8, sequence u64
constexpr uint32_t max_payload_bytes = uint32_t{1} << 30;

// Flag bits (docs/wal-format.md section 3).
constexpr uint8_t flag_commit = 0x01;
constexpr uint8_t flag_ignorable = 0x02;
constexpr unsigned type_shift = 2;

enum class record_type : uint8_t {
  invalid = 0,
  data = 1,  // an application payload
};

constexpr uint8_t make_flags(record_type type, bool commit, bool ignorable = false) {
  return static_cast<uint8_t>((static_cast<uint8_t>(type) << type_shift) |
                              (commit ? flag_commit : 0) | (ignorable ? flag_ignorable : 0));
}
constexpr uint8_t type_of(uint8_t flags) {
  return static_cast<uint8_t>(flags >> type_shift);
}
constexpr bool is_known_type(uint8_t type) {
  return type == static_cast<uint8_t>(record_type::data);
}

constexpr size_t encoded_record_bytes(size_t payload_bytes) {
  return record_header_bytes + payload_bytes;
}

// Writes one framed record at `out` (encoded_record_bytes(payload.size())
// bytes) and returns the position after it.
char* encode_record(char* out, uint64_t sequence, uint8_t flags, std::string_view payload);

// One record as found in a buffer; `payload` and `frame` point into that
// buffer.
struct record_view {
  uint64_t sequence = 0;
  uint8_t flags = 0;
  std::string_view payload;
  const char* frame = nullptr;  // the record's first header byte

  bool commit() const { return (flags & flag_commit) != 0; }
  uint8_t type() const { return type_of(flags); }
  // The whole record as framed: header and payload.
  std::string_view encoded() const { return {frame, encoded_record_bytes(payload.size())}; }
};

enum class decode_outcome : uint8_t {
  ok,            // a whole record with a matching CRC
  incomplete,    // fewer bytes than the header or its length say
  bad_length,    // length above max_payload_bytes
  bad_checksum,  // CRC mismatch
  bad_type,      // type 0, or unknown and not ignorable
};

const char* to_string(decode_outcome outcome);

// Decodes the record at `in` with `available` bytes after it. On `ok`, fills
// `out` and `record_bytes` (header plus payload). The sequence number is not
// judged here: continuity is the caller's rule.
decode_outcome decode_record(const char* in, size_t available, record_view& out,
                             size_t& record_bytes);

// Little-endian helpers shared by the encoders. The build only targets
// little-endian hosts (as base/crc32c does), so these are plain copies.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "wal/ assumes a little-endian host");
template <class T>
inline void put_le(char* out, T v) {
  std::memcpy(out, &v, sizeof(T));
}
template <class T>
inline T get_le(const char* in) {
  T v;
  std::memcpy(&v, in, sizeof(T));
  return v;
}

}  // namespace walrus::wal
