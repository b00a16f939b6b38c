// The retention half of wal::log: dropping whole old segments by sequence,
// by total size and by age. Cursors stay safe: the catalog forgets a segment
// before its file is deleted, so a new lookup fails with not_retained while a
// cursor that already opened the file keeps reading it (see cursor.hpp).
#include <cassert>

#include "wal/log.hpp"
#include "wal/segment.hpp"
#include "wal/segment_catalog.hpp"

namespace walrus::wal {

result<retention_report> log::drop_before(uint64_t sequence) {
  std::lock_guard<std::mutex> guard{retention_mu_};
  uint64_t keep_from = 0;
  for (const auto& segment : catalog_->segments()) {
    keep_from = segment.first_sequence;
    if (segment.active || segment.last_sequence >= sequence) break;
  }
  assert(keep_from > 0);
  return remove_segments_before(keep_from);
}

result<retention_report> log::enforce_retention() {
  auto now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
  return enforce_retention(now);
}

result<retention_report> log::enforce_retention(std::chrono::system_clock::time_point now) {
  std::lock_guard<std::mutex> guard{retention_mu_};
  auto segments = catalog_->segments();
  uint64_t total = 0;
  for (const auto& segment : segments) total += segment.size_bytes;
  uint64_t keep_from = segments.front().first_sequence;
  for (const auto& segment : segments) {
    keep_from = segment.first_sequence;
    if (segment.active) break;
    bool too_big = options_.max_retained_bytes > 0 && total > options_.max_retained_bytes;
    bool too_old = false;
    if (!too_big && options_.max_retained_age.count() > 0) {
      // The last write to a sealed segment is its newest record's time.
      auto modified = fs_.modified_time(segment.path);
      if (!modified) return modified.error();
      too_old = now - *modified > options_.max_retained_age;
    }
    if (!too_big && !too_old) break;  // newer segments are smaller in age too
    total -= segment.size_bytes;
  }
  return remove_segments_before(keep_from);
}

// Under retention_mu_.
result<retention_report> log::remove_segments_before(uint64_t keep_from) {
  // Never a segment that holds a protected record.
  uint64_t protect = protected_from_.load();
  for (const auto& segment : catalog_->segments()) {
    if (segment.first_sequence >= keep_from) break;
    if (segment.active || segment.last_sequence >= protect) {
      keep_from = segment.first_sequence;
      break;
    }
  }
  retention_report report;
  auto removed = catalog_->remove_before(keep_from);
  status first_error;
  for (auto& segment : removed) {
    assert(!segment.active);
    ++report.segments_removed;
    report.bytes_removed += segment.size_bytes;
    report.records_removed += segment.records();
    if (auto st = fs_.remove(segment.path); !st.ok() && first_error.ok()) first_error = st;
    report.removed_files.push_back(std::move(segment.path));
  }
  report.first_retained = catalog_->first_sequence();
  if (!removed.empty() && options_.sync.mode != sync_policy::kind::none)
    if (auto st = fs_.sync_dir(options_.dir); !st.ok() && first_error.ok()) first_error = st;
  // The catalog has moved on either way; a file left behind is only disk
  // space, and the next open treats it as an ordinary older segment.
  if (!first_error.ok()) return first_error;
  return report;
}

status log::skip_to(uint64_t next_sequence) {
  if (auto st = skip_locked(next_sequence); !st.ok()) return st;
  notify_hook();  // outside the locks: a hook may append
  return ok_status();
}

status log::skip_locked(uint64_t next_sequence) {
  std::lock_guard<std::mutex> retention{retention_mu_};
  std::lock_guard<std::mutex> guard{write_mu_};
  if (failed()) return failure();
  if (closed_) return status{errc::closed, "log " + options_.dir + " is closed"};
  if (next_sequence <= last_written_)
    return status{errc::invalid_argument, "cannot skip the log to sequence " +
                                              std::to_string(next_sequence) + ": it holds up to " +
                                              std::to_string(last_written_)};
  if (next_sequence == last_written_ + 1 && last_written_ == catalog_->durable_sequence() &&
      catalog_->first_sequence() == next_sequence)
    return ok_status();  // already there, nothing retained
  // The old files first, oldest first: a crash leaves a suffix of them.
  unsynced_sealed_.clear();
  active_file_.reset();
  for (const auto& segment : catalog_->segments())
    if (auto st = fs_.remove(segment.path); !st.ok()) return fail(std::move(st));
  if (auto st = fs_.sync_dir(options_.dir); !st.ok()) return fail(std::move(st));
  auto created = create_segment(fs_, options_.dir, next_sequence, true);
  if (!created) return fail(std::move(created).error());
  last_written_ = next_sequence - 1;
  cache_->clear();
  catalog_->restart_at(activate(std::move(*created), next_sequence));
  return ok_status();
}

void log::enforce_caps_after_roll() {
  if (!options_.enforce_retention_on_roll) return;
  if (options_.max_retained_bytes == 0 && options_.max_retained_age.count() == 0) return;
  // Not the appender's business: a failure here shows in the next explicit
  // enforce_retention() call.
  (void)enforce_retention();
}

}  // namespace walrus::wal
