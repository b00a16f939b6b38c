#include <cassert>
#include <cstring>

#include "apps/kv/snapshot.hpp"
#include "apps/kv/snapshot_format.hpp"
#include "base/crc32c.hpp"

namespace walrus::kv {

namespace fmt = snapshot_format;

snapshot_loader::snapshot_loader(snapshot_options opts) : opts_(opts) {
  assert(opts_.max_block_bytes > fmt::block_header_bytes && opts_.max_block_bytes <= UINT32_MAX);
}

status snapshot_loader::fail(errc code, uint64_t offset, const std::string& what) {
  error_ = status{code, "offset " + std::to_string(offset) + ": " + what};
  return error_;
}

status snapshot_loader::add(uint64_t offset, std::string_view chunk) {
  if (!error_.ok()) return error_;
  if (offset != info_.bytes)
    return fail(errc::protocol_violation, offset,
                "chunk out of order, expected offset " + std::to_string(info_.bytes));
  info_.crc32c = crc32c::extend(info_.crc32c, chunk.data(), chunk.size());
  info_.bytes += chunk.size();
  pending_.append(chunk.data(), chunk.size());
  // Stream offset of pending_[0].
  uint64_t base = info_.bytes - pending_.size();
  size_t pos = 0;
  for (;;) {
    std::string_view rest{pending_.data() + pos, pending_.size() - pos};
    if (!header_seen_) {
      if (rest.size() < fmt::header_bytes) break;
      if (auto st = parse_header(rest.substr(0, fmt::header_bytes)); !st.ok()) return st;
      pos += fmt::header_bytes;
      continue;
    }
    if (rest.empty()) break;
    if (trailer_seen_) return fail(errc::corruption, base + pos, "bytes after the trailer");
    if (rest.size() < fmt::block_header_bytes) break;
    auto length = fmt::get_u32(rest.data() + 4);
    if (length > opts_.max_block_bytes - fmt::block_header_bytes)
      return fail(errc::frame_too_large, base + pos,
                  "block of " + std::to_string(length) + " bytes exceeds the limit " +
                      std::to_string(opts_.max_block_bytes));
    if (rest.size() < fmt::block_header_bytes + length) break;
    auto expected = fmt::get_u32(rest.data());
    auto actual = crc32c::value(rest.data() + 4, 5 + length);
    if (expected != actual) return fail(errc::checksum_mismatch, base + pos, "block crc mismatch");
    auto type = static_cast<uint8_t>(rest[8]);
    auto payload = rest.substr(fmt::block_header_bytes, length);
    if (auto st = parse_block(type, payload, base + pos); !st.ok()) return st;
    pos += fmt::block_header_bytes + length;
  }
  pending_.erase(0, pos);
  assert(pending_.size() < opts_.max_block_bytes);
  return status{};
}

status snapshot_loader::parse_header(std::string_view bytes) {
  assert(bytes.size() == fmt::header_bytes);
  if (std::memcmp(bytes.data(), fmt::magic, sizeof(fmt::magic)) != 0)
    return fail(errc::corruption, 0, "not a walrus-kv snapshot (bad magic)");
  if (fmt::get_u32(bytes.data() + 24) != crc32c::value(bytes.data(), 24))
    return fail(errc::checksum_mismatch, 0, "header crc mismatch");
  auto version = fmt::get_u32(bytes.data() + 8);
  if (version != fmt::version)
    return fail(errc::version_mismatch, 8,
                "snapshot version " + std::to_string(version) + ", this build reads " +
                    std::to_string(fmt::version));
  auto flags = fmt::get_u32(bytes.data() + 12);
  if (flags != 0) return fail(errc::version_mismatch, 12, "unknown flags " + std::to_string(flags));
  info_.sequence = fmt::get_u64(bytes.data() + 16);
  header_seen_ = true;
  return status{};
}

status snapshot_loader::parse_block(uint8_t type, std::string_view payload, uint64_t offset) {
  switch (type) {
    case fmt::block_records: return parse_records(payload, offset);
    case fmt::block_trailer: return parse_trailer(payload, offset);
    default:
      if (type & fmt::block_ignorable) return status{};
      return fail(errc::unknown_frame, offset, "unknown block type " + std::to_string(type));
  }
}

status snapshot_loader::parse_records(std::string_view payload, uint64_t offset) {
  size_t pos = 0;
  auto at = [&] { return offset + fmt::block_header_bytes + pos; };
  while (pos < payload.size()) {
    auto record_at = at();
    uint64_t key_size = 0;
    uint64_t value_size = 0;
    uint64_t expire = 0;
    if (!get_varint(payload, pos, key_size) || !get_varint(payload, pos, value_size) ||
        !get_varint(payload, pos, expire))
      return fail(errc::corruption, record_at, "bad record header");
    if (key_size > payload.size() - pos || value_size > payload.size() - pos - key_size)
      return fail(errc::corruption, record_at, "record runs past its block");
    if (expire > static_cast<uint64_t>(INT64_MAX))
      return fail(errc::corruption, record_at, "expiry out of range");
    auto key = payload.substr(pos, key_size);
    auto value = payload.substr(pos + key_size, value_size);
    auto expire_at_ms = static_cast<int64_t>(expire);
    if (!image_.insert(key, value, expire_at_ms))
      return fail(errc::corruption, record_at, "duplicate key");
    content_hash_ += record_hash(key, value, expire_at_ms);
    ++info_.records;
    pos += key_size + value_size;
  }
  return status{};
}

status snapshot_loader::parse_trailer(std::string_view payload, uint64_t offset) {
  if (payload.size() != fmt::trailer_bytes)
    return fail(errc::corruption, offset,
                "trailer of " + std::to_string(payload.size()) + " bytes, expected " +
                    std::to_string(fmt::trailer_bytes));
  auto records = fmt::get_u64(payload.data());
  auto hash = fmt::get_u64(payload.data() + 8);
  if (records != info_.records)
    return fail(errc::corruption, offset,
                "trailer counts " + std::to_string(records) + " records, the blocks hold " +
                    std::to_string(info_.records));
  if (hash != content_hash_) return fail(errc::corruption, offset, "content hash mismatch");
  trailer_seen_ = true;
  return status{};
}

result<snapshot_info> snapshot_loader::finish(store& db) {
  if (!error_.ok()) return error_;
  if (!trailer_seen_) {
    auto missing = header_seen_ ? "the trailer" : "the header";
    return fail(errc::corruption, info_.bytes,
                std::string{"truncated: the snapshot ends before "} + missing +
                    (pending_.empty() ? ""
                                      : " (" + std::to_string(pending_.size()) +
                                            " bytes of an incomplete block)"));
  }
  assert(pending_.empty());
  if (auto st = db.install(image_, info_.sequence); !st.ok()) return st;
  image_ = store_image{};  // the store's old content
  return info_;
}

result<snapshot_info> snapshot_loader::finish(uint64_t total_bytes, uint32_t crc32c, store& db) {
  if (!error_.ok()) return error_;
  if (total_bytes != info_.bytes)
    return fail(errc::corruption, info_.bytes,
                "snapshot ended after " + std::to_string(info_.bytes) + " bytes, its end says " +
                    std::to_string(total_bytes));
  if (crc32c != info_.crc32c)
    return fail(errc::checksum_mismatch, info_.bytes, "snapshot crc32c mismatch");
  return finish(db);
}

}  // namespace walrus::kv
