#include "wal/segment_reader.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace walrus::wal {

segment_reader::segment_reader(size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {
  assert(chunk_bytes_ >= record_header_bytes);
}

void segment_reader::reset(file* segment, uint64_t offset, uint64_t limit) {
  assert(segment != nullptr);
  assert(offset <= limit);
  file_ = segment;
  offset_ = offset;
  limit_ = limit;
  buffer_pos_ = 0;
  buffer_end_ = 0;
  damage_ = decode_outcome::ok;
}

void segment_reader::extend_limit(uint64_t limit) {
  assert(limit >= limit_);
  limit_ = limit;
}

status segment_reader::refill(size_t wanted) {
  assert(file_ != nullptr);
  assert(wanted > buffered());
  size_t kept = buffered();
  size_t capacity = std::max(chunk_bytes_, wanted);
  // A buffer someone still holds (records handed on without a copy) is
  // left as it is.
  if (capacity > capacity_ || buffer_.use_count() > 1) {
    auto fresh = std::shared_ptr<char[]>(new char[capacity]);
    if (kept > 0) std::memcpy(fresh.get(), buffer_.get() + buffer_pos_, kept);
    buffer_ = std::move(fresh);
    capacity_ = capacity;
  } else if (kept > 0 && buffer_pos_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + buffer_pos_, kept);
  }
  buffer_pos_ = 0;
  buffer_end_ = kept;
  uint64_t file_pos = offset_ + kept;
  assert(file_pos <= limit_);
  size_t to_read = static_cast<size_t>(std::min<uint64_t>(capacity_ - kept, limit_ - file_pos));
  auto got = file_->read_at(file_pos, buffer_.get() + kept, to_read);
  if (!got) return got.error();
  buffer_end_ += *got;  // short only when the file ended before `limit`
  return ok_status();
}

result<segment_reader::step> segment_reader::next(record_view& out, bool allow_refill) {
  if (offset_ == limit_) return step::end;
  assert(offset_ < limit_);
  uint64_t remaining = limit_ - offset_;
  // The header, then the whole record, must be buffered before decoding.
  size_t needed = static_cast<size_t>(std::min<uint64_t>(record_header_bytes, remaining));
  for (int round = 0; round < 2; ++round) {
    if (buffered() < needed) {
      if (!allow_refill) return step::need_refill;
      if (auto st = refill(needed); !st.ok()) return st;
    }
    if (buffered() < record_header_bytes || round == 1) break;
    uint32_t length = get_le<uint32_t>(buffer_.get() + buffer_pos_ + 4);
    if (length > max_payload_bytes || record_header_bytes + length > remaining) break;
    needed = record_header_bytes + length;
  }
  size_t record_bytes = 0;
  damage_ = decode_record(buffer_.get() + buffer_pos_, buffered(), out, record_bytes);
  if (damage_ != decode_outcome::ok) return step::damaged;
  assert(record_bytes <= buffered());
  buffer_pos_ += record_bytes;
  offset_ += record_bytes;
  assert(offset_ <= limit_);
  return step::record;
}

}  // namespace walrus::wal
