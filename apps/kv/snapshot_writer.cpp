#include <cassert>

#include "apps/kv/snapshot.hpp"
#include "apps/kv/snapshot_format.hpp"
#include "base/crc32c.hpp"

namespace walrus::kv {

namespace fmt = snapshot_format;

result<std::unique_ptr<snapshot_writer>> snapshot_writer::open(store& db, snapshot_options opts) {
  auto cursor = db.begin_snapshot();
  if (!cursor) return std::move(cursor).error();
  return std::make_unique<snapshot_writer>(std::move(cursor).value(), opts);
}

snapshot_writer::snapshot_writer(std::unique_ptr<store::snapshot_cursor> cursor,
                                 snapshot_options opts)
    : cursor_(std::move(cursor)), opts_(opts) {
  assert(cursor_ != nullptr);
  assert(opts_.block_bytes > 0 && opts_.block_bytes <= opts_.max_block_bytes);
  assert(opts_.max_block_bytes <= UINT32_MAX);
  info_.sequence = cursor_->sequence();
}

result<bool> snapshot_writer::next_chunk(std::string& out) {
  if (trailer_done_) return false;
  auto start = out.size();
  if (!header_done_) {
    out.append(fmt::magic, sizeof(fmt::magic));
    fmt::put_u32(out, fmt::version);
    fmt::put_u32(out, 0);  // flags
    fmt::put_u64(out, info_.sequence);
    fmt::put_u32(out, crc32c::value(out.data() + start, out.size() - start));
    assert(out.size() - start == fmt::header_bytes);
    header_done_ = true;
  }
  if (!records_done_) {
    if (auto st = fill_records(); !st.ok()) return st;
  }
  if (!payload_.empty()) {
    append_block(out, fmt::block_records, payload_);
    payload_.clear();
  } else {
    assert(records_done_);
    assert(info_.records == cursor_->keys());
    std::string trailer;
    fmt::put_u64(trailer, info_.records);
    fmt::put_u64(trailer, content_hash_);
    append_block(out, fmt::block_trailer, trailer);
    trailer_done_ = true;
    cursor_.reset();  // thaws the store at once
  }
  info_.crc32c = crc32c::extend(info_.crc32c, out.data() + start, out.size() - start);
  info_.bytes += out.size() - start;
  return true;
}

// Encodes records into payload_ until it reaches block_bytes or the cursor
// ends; a record that does not fit stays pending for the next block.
status snapshot_writer::fill_records() {
  assert(payload_.empty());
  auto max_payload = opts_.max_block_bytes - fmt::block_header_bytes;
  for (;;) {
    if (!has_pending_) {
      if (!cursor_->next(pending_)) {
        records_done_ = true;
        return status{};
      }
      has_pending_ = true;
    }
    auto expire = static_cast<uint64_t>(pending_.expire_at_ms);
    auto size = fmt::record_bytes(pending_.key.size(), pending_.value.size(), expire);
    if (size > max_payload)
      return status{errc::size_limit_exceeded,
                    "snapshot record of " + std::to_string(size) + " bytes (key of " +
                        std::to_string(pending_.key.size()) + " bytes) exceeds the block limit " +
                        std::to_string(max_payload)};
    if (!payload_.empty() && payload_.size() + size > opts_.block_bytes) return status{};
    put_varint(payload_, pending_.key.size());
    put_varint(payload_, pending_.value.size());
    put_varint(payload_, expire);
    payload_.append(pending_.key.data(), pending_.key.size());
    payload_.append(pending_.value.data(), pending_.value.size());
    content_hash_ += record_hash(pending_.key, pending_.value, pending_.expire_at_ms);
    ++info_.records;
    has_pending_ = false;
    if (payload_.size() >= opts_.block_bytes) return status{};
  }
}

void snapshot_writer::append_block(std::string& out, uint8_t type, std::string_view payload) {
  assert(payload.size() + fmt::block_header_bytes <= opts_.max_block_bytes);
  auto crc_at = out.size();
  fmt::put_u32(out, 0);  // the CRC, filled in below
  fmt::put_u32(out, static_cast<uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out.append(payload.data(), payload.size());
  auto crc = crc32c::value(out.data() + crc_at + 4, out.size() - crc_at - 4);
  for (int i = 0; i < 4; ++i) out[crc_at + i] = static_cast<char>(crc >> (8 * i));
}

}  // namespace walrus::kv
