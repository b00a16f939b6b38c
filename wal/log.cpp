#include "wal/log.hpp"

#include "base/bitmap.hpp"

#include <algorithm>
#include <cassert>

#include "wal/format.hpp"
#include "wal/segment.hpp"
#include "wal/segment_catalog.hpp"

namespace walrus::wal {

namespace {

constexpr uint64_t min_segment_bytes = 4096;
// The write buffer holds one framed transaction (at most
// max_transaction_bytes); grown beyond this for a large one, it is released
// at the next smaller append.
constexpr size_t kept_buffer_bytes = size_t{16} << 20;

status check_options(const options& opts) {
  auto invalid = [](std::string what) { return status{errc::invalid_argument, std::move(what)}; };
  if (opts.dir.empty()) return invalid("options.dir is empty");
  if (opts.segment_bytes < min_segment_bytes)
    return invalid("options.segment_bytes is " + std::to_string(opts.segment_bytes) +
                   ", the minimum is " + std::to_string(min_segment_bytes));
  bool interval = opts.sync.mode == sync_policy::kind::interval;
  if (interval != (opts.sync.interval.count() > 0))
    return invalid("sync policy " + opts.sync.to_string() +
                   ": the interval must be > 0 exactly for interval:<ms>");
  if (opts.max_retained_age.count() < 0) return invalid("options.max_retained_age is negative");
  if (opts.cursor_chunk_bytes < 4096) return invalid("options.cursor_chunk_bytes is below 4096");
  if (opts.tail_cache_bytes > 0 && opts.tail_cache_chunk_bytes < 4096)
    return invalid("options.tail_cache_chunk_bytes is below 4096");
  return ok_status();
}

}  // namespace

result<std::unique_ptr<log>> log::open(const options& opts) {
  if (auto st = check_options(opts); !st.ok()) return st;
  file_system& fs = opts.fs != nullptr ? *opts.fs : posix_file_system();
  recovery_options how;
  how.mode = opts.recovery;
  how.verify_all_segments = opts.verify_all_segments;
  how.durable = opts.sync.mode != sync_policy::kind::none;
  auto recovered = recover(fs, opts.dir, how);
  if (!recovered) return recovered.error();
  std::unique_ptr<log> opened{new log(opts, std::move(*recovered))};
  if (opened->options_.sync.mode == sync_policy::kind::interval) opened->start_interval_thread();
  return opened;
}

log::log(options opts, recovered_log recovered)
    : options_(std::move(opts)),
      fs_(options_.fs != nullptr ? *options_.fs : posix_file_system()),
      recovery_(std::move(recovered.report)),
      active_file_(std::move(recovered.active_file)) {
  assert(active_file_ != nullptr);
  assert(!recovered.segments.empty());
  const segment_entry& active = recovered.segments.back();
  active_first_ = active.first_sequence;
  active_size_ = active.size_bytes;
  last_written_ = active.last_sequence;
  // Recovery synced what it kept (or the policy is none): all of it counts
  // as durable.
  catalog_ = std::make_shared<segment_catalog>(fs_, options_.dir, std::move(recovered.segments),
                                               last_written_);
  cache_ = std::make_shared<tail_cache>(options_.tail_cache_bytes, options_.tail_cache_chunk_bytes);
  last_notified_ = last_written_;
}

log::~log() {
  (void)close();
}

char* log::reserve_buffer(size_t bytes) {
  bool oversized = buffer_capacity_ > kept_buffer_bytes && bytes <= kept_buffer_bytes;
  if (bytes > buffer_capacity_ || oversized) {
    size_t capacity = std::max(bytes, size_t{64} << 10);
    buffer_.reset(new char[capacity]);
    buffer_capacity_ = capacity;
  }
  assert(buffer_capacity_ >= bytes);
  return buffer_.get();
}

result<sequence_range> log::append(const std::string_view* payloads, size_t count) {
  return append_records(payloads, count, {});
}

result<sequence_range> log::append_transactions(const std::string_view* payloads, size_t count,
                                                std::string_view commit_bits) {
  if (count == 0 || !test_bit(commit_bits, count - 1))
    return status{errc::invalid_argument, "the last record of a batch of transactions must commit"};
  return append_records(payloads, count, commit_bits);
}

// An empty `commit_bits` means one transaction: only the last record commits.
result<sequence_range> log::append_records(const std::string_view* payloads, size_t count,
                                           std::string_view commit_bits) {
  if (count == 0) return status{errc::invalid_argument, "append of an empty transaction"};
  assert(payloads != nullptr);
  uint64_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    if (payloads[i].size() > max_payload_bytes)
      return status{errc::invalid_argument,
                    "payload " + std::to_string(i) + " of " + std::to_string(count) + " is " +
                        std::to_string(payloads[i].size()) + " bytes; the maximum is " +
                        std::to_string(max_payload_bytes)};
    bytes += encoded_record_bytes(payloads[i].size());
  }
  if (bytes > max_transaction_bytes)
    return status{errc::invalid_argument, "transaction of " + std::to_string(count) +
                                              " records is " + std::to_string(bytes) +
                                              " bytes framed; the maximum is " +
                                              std::to_string(max_transaction_bytes)};
  sequence_range range;
  bool rolled = false;
  {
    std::lock_guard<std::mutex> guard{write_mu_};
    if (closed_) return status{errc::closed, "log " + options_.dir + " is closed"};
    if (failed()) return failure();
    if (auto st = write_transaction(payloads, count, commit_bits, bytes, range, rolled); !st.ok())
      return st;
  }
  assert(range.last - range.first + 1 == count);
  return finish_append(range, rolled);
}

result<sequence_range> log::append_encoded(const std::string_view* pieces, size_t piece_count,
                                           uint64_t count) {
  if (piece_count == 0 || count == 0) return status{errc::invalid_argument, "append of no records"};
  assert(pieces != nullptr);
  // Whole records of type data, consecutive from the first one's sequence,
  // the last committing. Headers only: the CRCs were checked by the caller.
  uint64_t first = 0, seen = 0, bytes = 0;
  bool commit = false;
  for (size_t p = 0; p < piece_count; ++p) {
    auto piece = pieces[p];
    for (size_t at = 0; at < piece.size(); ++seen) {
      auto refuse = [&](const char* what) {
        return status{errc::invalid_argument, "record " + std::to_string(seen) + " of " +
                                                  std::to_string(count) + " to append: " + what};
      };
      if (piece.size() - at < record_header_bytes) return refuse("header cut short");
      auto length = get_le<uint32_t>(piece.data() + at + 4);
      if (length > max_payload_bytes || piece.size() - at - record_header_bytes < length)
        return refuse("payload cut short");
      auto flags = static_cast<uint8_t>(piece[at + 8]);
      auto sequence = get_le<uint64_t>(piece.data() + at + 9);
      if (seen == 0) first = sequence;
      if (sequence != first + seen) return refuse("sequence out of order");
      if (type_of(flags) != static_cast<uint8_t>(record_type::data)) return refuse("not data");
      commit = (flags & flag_commit) != 0;
      at += record_header_bytes + length;
    }
    bytes += piece.size();
  }
  if (seen != count)
    return status{errc::invalid_argument,
                  "append of " + std::to_string(count) + " records found " + std::to_string(seen)};
  if (!commit)
    return status{errc::invalid_argument, "the last record of a batch of transactions must commit"};
  if (bytes > max_transaction_bytes)
    return status{errc::invalid_argument,
                  std::to_string(count) + " records are " + std::to_string(bytes) +
                      " bytes framed; the maximum is " + std::to_string(max_transaction_bytes)};
  sequence_range range;
  bool rolled = false;
  {
    std::lock_guard<std::mutex> guard{write_mu_};
    if (closed_) return status{errc::closed, "log " + options_.dir + " is closed"};
    if (failed()) return failure();
    if (first != last_written_ + 1)
      return status{errc::invalid_argument, "records to append start at " + std::to_string(first) +
                                                ", the log continues at " +
                                                std::to_string(last_written_ + 1)};
    if (auto st = roll_if_full(bytes, rolled); !st.ok()) return st;
    range = {first, first + count - 1};
    if (auto st = active_file_->append_pieces(pieces, piece_count); !st.ok())
      return fail(std::move(st));
    if (auto st = written(bytes, range); !st.ok()) return st;
  }
  return finish_append(range, rolled);
}

// After a write, outside the write lock: the sync policy, the hook, the caps.
result<sequence_range> log::finish_append(const sequence_range& range, bool rolled) {
  if (options_.sync.mode == sync_policy::kind::group)
    if (auto st = sync_until(range.last, false); !st.ok()) return st;
  stat_appends_.fetch_add(1, std::memory_order_relaxed);
  notify_hook();
  if (rolled) enforce_caps_after_roll();
  return range;
}

// Under write_mu_: a transaction of `bytes` does not fit the active segment
// (which holds a record): start the next one.
status log::roll_if_full(uint64_t bytes, bool& rolled) {
  bool active_has_records = last_written_ >= active_first_;
  if (active_has_records && active_size_ + bytes > options_.segment_bytes) {
    if (auto st = roll(); !st.ok()) return st;
    rolled = true;
  }
  return ok_status();
}

// Under write_mu_: rolls if needed, frames the records (into the tail cache
// when it takes them) and writes them.
status log::write_transaction(const std::string_view* payloads, size_t count,
                              std::string_view commit_bits, uint64_t bytes, sequence_range& range,
                              bool& rolled) {
  if (auto st = roll_if_full(bytes, rolled); !st.ok()) return st;
  range.first = last_written_ + 1;
  range.last = last_written_ + count;
  auto size = static_cast<size_t>(bytes);
  char* buffer = cache_->reserve(size, range.first, active_first_, active_size_);
  if (buffer == nullptr) buffer = reserve_buffer(size);
  char* out = buffer;
  for (size_t i = 0; i < count; ++i) {
    bool commit = i + 1 == count || test_bit(commit_bits, i);
    uint8_t flags = make_flags(record_type::data, commit);
    out = encode_record(out, range.first + i, flags, payloads[i]);
  }
  assert(static_cast<uint64_t>(out - buffer) == bytes);
  if (auto st = active_file_->append(buffer, size); !st.ok()) return fail(std::move(st));
  cache_->commit(size, range.last);  // before the records can become durable
  return written(bytes, range);
}

// Under write_mu_: the records of `range`, `bytes` bytes, are in the active
// segment's file.
status log::written(uint64_t bytes, const sequence_range& range) {
  auto count = range.last - range.first + 1;
  active_size_ += bytes;
  last_written_ = range.last;
  catalog_->record_written(active_size_, last_written_);
  stat_records_.fetch_add(count, std::memory_order_relaxed);
  stat_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  switch (options_.sync.mode) {
    case sync_policy::kind::always:
      stat_syncs_.fetch_add(1, std::memory_order_relaxed);
      if (auto st = active_file_->sync(); !st.ok()) return fail(std::move(st));
      catalog_->publish_durable(last_written_);
      break;
    case sync_policy::kind::none: catalog_->publish_durable(last_written_); break;
    case sync_policy::kind::group:
    case sync_policy::kind::interval: break;
  }
  return ok_status();
}

// Under write_mu_: seals the active segment and starts the next one. Every
// policy but `none` syncs the old segment first, so records never become
// durable out of order, and makes the new file's directory entry durable.
status log::roll() {
  assert(last_written_ >= active_first_);
  bool durable = options_.sync.mode != sync_policy::kind::none;
  if (durable) {
    stat_syncs_.fetch_add(1, std::memory_order_relaxed);
    if (auto st = active_file_->sync(); !st.ok()) return fail(std::move(st));
    catalog_->publish_durable(last_written_);
  }
  uint64_t first = last_written_ + 1;
  auto created = create_segment(fs_, options_.dir, first, durable);
  if (!created) return fail(std::move(created).error());
  if (!durable)
    if (auto st = park_unsynced(std::move(active_file_)); !st.ok()) return st;
  catalog_->roll(activate(std::move(*created), first));
  stat_rolls_.fetch_add(1, std::memory_order_relaxed);
  return ok_status();
}

// Under write_mu_: `created`, empty and starting at `first`, becomes the
// active segment; its catalog entry.
segment_entry log::activate(std::shared_ptr<file> created, uint64_t first) {
  active_file_ = std::move(created);
  active_first_ = first;
  active_size_ = segment_header_bytes;
  segment_entry entry;
  entry.first_sequence = first;
  entry.last_sequence = first - 1;
  entry.size_bytes = segment_header_bytes;
  entry.path = join_path(options_.dir, segment_file_name(first));
  entry.active = true;
  return entry;
}

// Under write_mu_, policy `none`: remembers a sealed segment for sync().
status log::park_unsynced(std::shared_ptr<file> sealed) {
  assert(options_.sync.mode == sync_policy::kind::none);
  uint64_t first_retained = catalog_->first_sequence();
  auto dropped = [&](const unsynced_segment& s) { return s.first_sequence < first_retained; };
  unsynced_sealed_.erase(std::remove_if(unsynced_sealed_.begin(), unsynced_sealed_.end(), dropped),
                         unsynced_sealed_.end());
  unsynced_sealed_.push_back({active_first_, std::move(sealed)});
  dir_unsynced_ = true;
  if (unsynced_sealed_.size() <= max_unsynced_sealed) return ok_status();
  stat_syncs_.fetch_add(1, std::memory_order_relaxed);
  if (auto st = unsynced_sealed_.front().handle->sync(); !st.ok()) return fail(std::move(st));
  unsynced_sealed_.erase(unsynced_sealed_.begin());
  assert(unsynced_sealed_.size() == max_unsynced_sealed);
  return ok_status();
}

uint64_t log::durable_sequence() const {
  return catalog_->durable_sequence();
}

uint64_t log::last_sequence() const {
  return catalog_->last_sequence();
}

uint64_t log::first_sequence() const {
  return catalog_->first_sequence();
}

uint64_t log::retained_bytes() const {
  return catalog_->total_bytes();
}

status log::health() const {
  if (failed()) return failure();
  std::lock_guard<std::mutex> guard{write_mu_};
  if (closed_) return status{errc::closed, "log " + options_.dir + " is closed"};
  return ok_status();
}

log_stats log::stats() const {
  log_stats out;
  out.appends = stat_appends_.load(std::memory_order_relaxed);
  out.records = stat_records_.load(std::memory_order_relaxed);
  out.bytes_written = stat_bytes_.load(std::memory_order_relaxed);
  out.syncs = stat_syncs_.load(std::memory_order_relaxed);
  out.rolls = stat_rolls_.load(std::memory_order_relaxed);
  return out;
}

result<cursor> log::read_from(uint64_t sequence) const {
  if (sequence == 0) return status{errc::invalid_argument, "read_from(0): sequences start at 1"};
  auto segment = catalog_->segment_for(sequence);  // checks retention and range
  if (!segment) return segment.error();
  return cursor{catalog_, cache_, sequence, options_.cursor_chunk_bytes};
}

status log::close() {
  {
    std::lock_guard<std::mutex> guard{write_mu_};
    if (closed_) return ok_status();
    closed_ = true;
  }
  stop_interval_thread();
  if (failed()) return failure();
  if (options_.sync.mode == sync_policy::kind::none) return ok_status();
  // Appends are refused now; a last round makes everything written durable.
  auto st = sync_until(catalog_->last_sequence(), false);
  notify_hook();
  return st;
}

}  // namespace walrus::wal
