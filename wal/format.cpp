#include "wal/format.hpp"

#include <cassert>
#include <cstdio>

#include "base/crc32c.hpp"

namespace walrus::wal {

std::string segment_file_name(uint64_t first_sequence) {
  assert(first_sequence > 0);
  char digits[segment_name_digits + 1];
  int n = std::snprintf(digits, sizeof(digits), "%020llu",
                        static_cast<unsigned long long>(first_sequence));
  assert(n == static_cast<int>(segment_name_digits));
  (void)n;
  std::string name(digits, segment_name_digits);
  name += segment_suffix;
  return name;
}

std::optional<uint64_t> parse_segment_file_name(std::string_view name) {
  if (name.size() != segment_name_digits + segment_suffix.size()) return std::nullopt;
  if (name.substr(segment_name_digits) != segment_suffix) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < segment_name_digits; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;  // overflow
    value = value * 10 + digit;
  }
  if (value == 0 || value > max_first_sequence) return std::nullopt;
  return value;
}

void encode_segment_header(uint64_t first_sequence, char* out) {
  assert(first_sequence > 0);
  put_le<uint32_t>(out, segment_magic);
  put_le<uint16_t>(out + 4, format_version);
  put_le<uint16_t>(out + 6, 0);
  put_le<uint64_t>(out + 8, first_sequence);
  put_le<uint32_t>(out + 16, crc32c::value(out, 16));
}

result<uint64_t> decode_segment_header(const char* in) {
  auto fail = [](errc code, const std::string& what) {
    return status{code, "segment header: " + what};
  };
  uint32_t magic = get_le<uint32_t>(in);
  if (magic != segment_magic) {
    char text[64];
    std::snprintf(text, sizeof(text), "bad magic 0x%08x, expected 0x%08x", magic, segment_magic);
    return fail(errc::corruption, text);
  }
  uint32_t stored_crc = get_le<uint32_t>(in + 16);
  uint32_t actual_crc = crc32c::value(in, 16);
  if (stored_crc != actual_crc) return fail(errc::corruption, "crc mismatch");
  uint16_t version = get_le<uint16_t>(in + 4);
  if (version != format_version)
    return fail(errc::version_mismatch, "unsupported format version " + std::to_string(version) +
                                            ", this build reads version " +
                                            std::to_string(format_version));
  uint64_t first_sequence = get_le<uint64_t>(in + 8);
  if (first_sequence == 0) return fail(errc::corruption, "first sequence is 0");
  return first_sequence;
}

char* encode_record(char* out, uint64_t sequence, uint8_t flags, std::string_view payload) {
  assert(sequence > 0);
  assert(payload.size() <= max_payload_bytes);
  put_le<uint32_t>(out + 4, static_cast<uint32_t>(payload.size()));
  out[8] = static_cast<char>(flags);
  put_le<uint64_t>(out + 9, sequence);
  if (!payload.empty()) std::memcpy(out + record_header_bytes, payload.data(), payload.size());
  uint32_t crc = crc32c::value(out + 4, record_header_bytes - 4 + payload.size());
  put_le<uint32_t>(out, crc);
  return out + record_header_bytes + payload.size();
}

const char* to_string(decode_outcome outcome) {
  switch (outcome) {
    case decode_outcome::ok: return "ok";
    case decode_outcome::incomplete: return "record cut short by end of data";
    case decode_outcome::bad_length: return "record length above the maximum";
    case decode_outcome::bad_checksum: return "crc mismatch";
    case decode_outcome::bad_type: return "invalid or unknown record type";
  }
  return "unknown outcome";
}

decode_outcome decode_record(const char* in, size_t available, record_view& out,
                             size_t& record_bytes) {
  if (available < record_header_bytes) return decode_outcome::incomplete;
  uint32_t length = get_le<uint32_t>(in + 4);
  if (length > max_payload_bytes) return decode_outcome::bad_length;
  if (available - record_header_bytes < length) return decode_outcome::incomplete;
  uint32_t stored_crc = get_le<uint32_t>(in);
  uint32_t actual_crc = crc32c::value(in + 4, record_header_bytes - 4 + length);
  if (stored_crc != actual_crc) return decode_outcome::bad_checksum;
  auto flags = static_cast<uint8_t>(in[8]);
  uint8_t type = type_of(flags);
  if (type == 0 || (!is_known_type(type) && (flags & flag_ignorable) == 0))
    return decode_outcome::bad_type;
  out.sequence = get_le<uint64_t>(in + 9);
  out.flags = flags;
  out.payload = std::string_view{in + record_header_bytes, length};
  out.frame = in;
  record_bytes = record_header_bytes + length;
  assert(record_bytes <= available);
  return decode_outcome::ok;
}

}  // namespace walrus::wal
