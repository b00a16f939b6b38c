#include "wal/cursor.hpp"

#include <algorithm>
#include <cassert>

#include "wal/segment_catalog.hpp"

namespace walrus::wal {

cursor::cursor(std::shared_ptr<const segment_catalog> catalog,
               std::shared_ptr<const tail_cache> cache, uint64_t sequence, size_t chunk_bytes)
    : catalog_(std::move(catalog)),
      next_(sequence),
      reader_(chunk_bytes),
      cache_(std::move(cache)) {
  assert(catalog_ != nullptr);
  assert(sequence > 0);
}

cursor::cursor(cursor&&) noexcept = default;
cursor& cursor::operator=(cursor&&) noexcept = default;
cursor::~cursor() = default;

status cursor::read(std::vector<record_view>& batch, size_t max_records) {
  assert(max_records > 0);
  batch.clear();
  if (!failure_.ok()) return failure_;
  if (read_cached(batch, max_records)) return ok_status();
  auto st = fill(batch, max_records);
  // A refill happens only before the first record of a call: every view
  // points into the buffer the reader holds now.
  owner_ = reader_.buffer();
  assert(batch.size() <= max_records);
  if (st.ok()) return st;
  failure_ = st;
  // Records read before the failure are still good (their views point into
  // the buffer, which the failed step did not touch): hand them out now and
  // report the failure on the next call.
  return batch.empty() ? st : ok_status();
}

result<bool> cursor::next(record_view& out) {
  auto st = read(single_, 1);
  if (!st.ok()) return st;
  if (single_.empty()) return false;
  out = single_.front();
  return true;
}

// Serves records from the tail cache when it holds next_; false when it
// does not (the file has them, or nothing is there yet).
bool cursor::read_cached(std::vector<record_view>& batch, size_t max_records) {
  if (!cache_) return false;
  uint64_t durable = catalog_->durable_sequence();
  if (next_ > durable) return false;
  if (!chunk_ || chunk_next_ != next_ || next_ > chunk_->last_sequence()) {
    // Like a segment file, a chunk already held is read to its end after
    // retention dropped its records; a new one is taken only if retained.
    if (next_ < catalog_->first_sequence()) return false;
    chunk_ = cache_->find(next_);
    if (!chunk_) return false;
    chunk_offset_ = 0;
    chunk_next_ = chunk_->first_sequence;
    while (chunk_next_ < next_) {  // every record before next_ is committed
      chunk_offset_ +=
          record_header_bytes + get_le<uint32_t>(chunk_->data.get() + chunk_offset_ + 4);
      ++chunk_next_;
    }
  }
  // The writer framed these records itself and they never change: no CRC
  // to check, only the headers to walk.
  const char* data = chunk_->data.get();
  uint64_t last = std::min(durable, chunk_->last_sequence());
  while (batch.size() < max_records && chunk_next_ <= last) {
    record_view view;
    view.frame = data + chunk_offset_;
    view.flags = static_cast<uint8_t>(view.frame[8]);
    view.sequence = get_le<uint64_t>(view.frame + 9);
    view.payload = {view.frame + record_header_bytes, get_le<uint32_t>(view.frame + 4)};
    assert(view.sequence == chunk_next_);
    chunk_offset_ += encoded_record_bytes(view.payload.size());
    next_ = ++chunk_next_;
    if (is_known_type(view.type())) batch.push_back(view);
  }
  owner_ = chunk_;
  file_.reset();  // a later file read starts at the chunk's position (enter_segment)
  return true;
}

status cursor::fill(std::vector<record_view>& batch, size_t max_records) {
  while (batch.size() < max_records) {
    if (file_ == nullptr) {
      if (next_ > catalog_->durable_sequence()) return ok_status();  // caught up
      if (auto st = enter_segment(); !st.ok()) return st;
    }
    uint64_t durable = 0;
    auto sealed = refresh_limit(durable);
    if (!sealed) return sealed.error();
    auto stopped = read_segment(batch, max_records, durable);
    if (!stopped) return stopped.error();
    if (*stopped != stop::segment_end || !*sealed) return ok_status();
    // The segment is complete and fully read: on to the next one.
    assert(reader_.offset() == reader_.limit());
    // Fewer records than the catalog assigns it (open did not scan it): damage,
    // not a reason to read the same segment again forever.
    if (auto p = catalog_->progress_of(segment_first_); p.retained && file_next_ <= p.last_sequence)
      return corruption_at(reader_.offset(), "segment ends at sequence " +
                                                 std::to_string(file_next_ - 1) + ", expected " +
                                                 std::to_string(p.last_sequence));
    file_.reset();
  }
  return ok_status();
}

status cursor::enter_segment() {
  assert(file_ == nullptr);
  auto entry = catalog_->segment_for(next_);
  if (!entry) return entry.error();
  auto opened = catalog_->fs().open(entry->path, open_mode::read_only);
  if (!opened) {
    // Retention may have deleted it between the lookup and the open.
    uint64_t first = catalog_->first_sequence();
    if (next_ < first) return segment_catalog::not_retained(next_, first);
    return opened.error();
  }
  file_ = std::move(*opened);
  path_ = entry->path;
  segment_first_ = entry->first_sequence;
  file_next_ = entry->first_sequence;
  char header[segment_header_bytes];
  auto got = file_->read_at(0, header, sizeof(header));
  if (!got) return got.error();
  if (*got != sizeof(header)) return corruption_at(0, "segment header cut short");
  auto first = decode_segment_header(header);
  if (!first) return status{first.error().code(), path_ + " offset 0: " + first.error().message()};
  if (*first != segment_first_)
    return corruption_at(0, "segment header says first sequence " + std::to_string(*first) +
                                ", expected " + std::to_string(segment_first_));
  reader_.reset(file_.get(), segment_header_bytes, entry->size_bytes);
  if (chunk_ && chunk_next_ == next_ && chunk_->segment_first == segment_first_) {
    // Known from the tail cache: next_ starts at this offset of the file.
    reader_.reset(file_.get(), chunk_->file_offset + chunk_offset_, entry->size_bytes);
    file_next_ = next_;
  }
  return ok_status();
}

// Moves the read limit to what the catalog says is readable now; true when
// the segment will not grow any more.
result<bool> cursor::refresh_limit(uint64_t& durable) {
  auto progress = catalog_->progress_of(segment_first_);
  durable = progress.durable_sequence;
  if (progress.retained) {
    reader_.extend_limit(progress.size_bytes);
    return !progress.active;
  }
  // Dropped by retention after we opened it: it was sealed, so the open file
  // holds all of it.
  auto size = file_->size();
  if (!size) return size.error();
  if (*size > reader_.limit()) reader_.extend_limit(*size);
  return true;
}

result<cursor::stop> cursor::read_segment(std::vector<record_view>& batch, size_t max_records,
                                          uint64_t durable) {
  for (;;) {
    if (batch.size() >= max_records) return stop::batch_full;
    if (file_next_ > durable) return stop::caught_up;
    uint64_t offset = reader_.offset();
    record_view view;
    auto step = reader_.next(view, batch.empty());
    if (!step) return step.error();
    switch (*step) {
      case segment_reader::step::end: return stop::segment_end;
      case segment_reader::step::need_refill: return stop::buffer_boundary;
      case segment_reader::step::damaged: return corruption_at(offset, to_string(reader_.damage()));
      case segment_reader::step::record: break;
    }
    if (view.sequence != file_next_)
      return corruption_at(offset, "record has sequence " + std::to_string(view.sequence) +
                                       ", expected " + std::to_string(file_next_));
    ++file_next_;
    if (view.sequence < next_) continue;  // positioning after read_from()
    assert(view.sequence == next_);
    next_ = view.sequence + 1;
    if (!is_known_type(view.type())) continue;  // ignorable (decode rejects the rest)
    batch.push_back(view);
  }
}

status cursor::corruption_at(uint64_t offset, const std::string& what) const {
  return status{errc::corruption, path_ + " offset " + std::to_string(offset) + ": " + what};
}

}  // namespace walrus::wal
