#include "codec/entries.hpp"

#include <cassert>

#include "base/varint.hpp"

namespace walrus::codec {

size_t encoded_size(size_t payload_size) noexcept {
  return varint_size(payload_size) + payload_size;
}

void entries_writer::add(std::string_view payload, bool commit) {
  assert(payload.size() <= UINT32_MAX);
  put_varint(blob_, payload.size());
  blob_.append(payload.data(), payload.size());
  if (count_ / 8 >= flags_.size()) flags_.push_back('\0');
  if (commit) flags_[count_ / 8] = static_cast<char>(flags_[count_ / 8] | (1 << (count_ % 8)));
  ++count_;
}

void append_entries(std::string& dst, std::string& dst_flags, uint64_t dst_count,
                    std::string_view src, std::string_view src_flags, uint64_t src_count) {
  assert(dst_flags.size() == (dst_count + 7) / 8);
  assert(src_flags.size() >= (src_count + 7) / 8);
  dst.append(src.data(), src.size());
  if (dst_count % 8 == 0) {
    dst_flags.append(src_flags.data(), (src_count + 7) / 8);
    return;
  }
  dst_flags.resize((dst_count + src_count + 7) / 8, '\0');
  for (uint64_t i = 0; i < src_count; ++i) {
    if (!commit_bit(src_flags, i)) continue;
    auto j = dst_count + i;
    dst_flags[j / 8] = static_cast<char>(dst_flags[j / 8] | (1 << (j % 8)));
  }
}

status parse_entries(std::string_view blob, std::string_view commit_flags, uint64_t count,
                     std::vector<entry_view>& out) {
  out.clear();
  if (commit_flags.size() != (count + 7) / 8)
    return status{errc::malformed_frame, "commit flags hold " +
                                             std::to_string(commit_flags.size()) + " bytes for " +
                                             std::to_string(count) + " entries"};
  // Every entry takes at least one byte: refuse an impossible count before
  // reserving memory for it (the count comes from the wire).
  if (count > blob.size())
    return status{errc::malformed_frame, std::to_string(count) + " entries cannot fit in " +
                                             std::to_string(blob.size()) + " bytes"};
  out.reserve(count);
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t length = 0;
    int shift = 0;
    for (;;) {
      if (pos >= blob.size() || shift > 28)
        return status{errc::malformed_frame, "entry " + std::to_string(i) + " at offset " +
                                                 std::to_string(pos) + ": bad length varint"};
      auto byte = static_cast<uint8_t>(blob[pos++]);
      length |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) break;
      shift += 7;
    }
    if (length > blob.size() - pos)
      return status{errc::malformed_frame, "entry " + std::to_string(i) + " at offset " +
                                               std::to_string(pos) + " claims " +
                                               std::to_string(length) + " bytes, " +
                                               std::to_string(blob.size() - pos) + " remain"};
    out.push_back(entry_view{blob.substr(pos, length), commit_bit(commit_flags, i)});
    pos += length;
  }
  if (pos != blob.size())
    return status{errc::malformed_frame, std::to_string(blob.size() - pos) +
                                             " bytes follow the last of " + std::to_string(count) +
                                             " entries"};
  return status{};
}

}  // namespace walrus::codec
