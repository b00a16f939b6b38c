#include "wal/segment_catalog.hpp"

#include <algorithm>
#include <cassert>

namespace walrus::wal {

segment_catalog::segment_catalog(file_system& fs, std::string dir,
                                 std::vector<segment_entry> segments, uint64_t durable_sequence)
    : fs_(fs), dir_(std::move(dir)), segments_(segments.begin(), segments.end()) {
  assert(!segments_.empty());
  for (const auto& segment : segments_) total_bytes_ += segment.size_bytes;
  last_.store(segments_.back().last_sequence);
  durable_.store(durable_sequence);
  std::lock_guard<std::mutex> guard{mu_};
  check_invariants_locked();
}

void segment_catalog::check_invariants_locked() const {
  assert(!segments_.empty());
  assert(segments_.back().active);
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    assert(!segments_[i].active);
    assert(segments_[i].last_sequence + 1 == segments_[i + 1].first_sequence);
  }
  assert(durable_.load() <= last_.load());
  assert(last_.load() == segments_.back().last_sequence);
}

void segment_catalog::record_written(uint64_t active_size_bytes, uint64_t last_sequence) {
  std::lock_guard<std::mutex> guard{mu_};
  segment_entry& active = segments_.back();
  assert(active_size_bytes >= active.size_bytes);
  assert(last_sequence >= active.last_sequence);
  total_bytes_ += active_size_bytes - active.size_bytes;
  active.size_bytes = active_size_bytes;
  active.last_sequence = last_sequence;
  last_.store(last_sequence, std::memory_order_release);
}

void segment_catalog::roll(segment_entry next) {
  std::lock_guard<std::mutex> guard{mu_};
  assert(next.active);
  assert(next.first_sequence == segments_.back().last_sequence + 1);
  assert(next.last_sequence + 1 == next.first_sequence);
  segments_.back().active = false;
  total_bytes_ += next.size_bytes;
  segments_.push_back(std::move(next));
  check_invariants_locked();
}

bool segment_catalog::publish_durable(uint64_t sequence) {
  assert(sequence <= last_.load());
  uint64_t current = durable_.load(std::memory_order_relaxed);
  while (current < sequence)
    if (durable_.compare_exchange_weak(current, sequence, std::memory_order_acq_rel)) return true;
  return false;
}

std::vector<segment_entry> segment_catalog::remove_before(uint64_t keep_from) {
  std::lock_guard<std::mutex> guard{mu_};
  std::vector<segment_entry> removed;
  while (!segments_.front().active && segments_.front().first_sequence < keep_from) {
    assert(total_bytes_ >= segments_.front().size_bytes);
    total_bytes_ -= segments_.front().size_bytes;
    removed.push_back(std::move(segments_.front()));
    segments_.pop_front();
  }
  check_invariants_locked();
  return removed;
}

void segment_catalog::restart_at(segment_entry next) {
  std::lock_guard<std::mutex> guard{mu_};
  assert(next.active && next.last_sequence + 1 == next.first_sequence);
  assert(next.first_sequence > last_.load());
  segments_.clear();
  total_bytes_ = next.size_bytes;
  last_.store(next.last_sequence, std::memory_order_release);
  durable_.store(next.last_sequence, std::memory_order_release);
  segments_.push_back(std::move(next));
  check_invariants_locked();
}

uint64_t segment_catalog::first_sequence() const {
  std::lock_guard<std::mutex> guard{mu_};
  return segments_.front().first_sequence;
}

uint64_t segment_catalog::total_bytes() const {
  std::lock_guard<std::mutex> guard{mu_};
  return total_bytes_;
}

std::vector<segment_entry> segment_catalog::segments() const {
  std::lock_guard<std::mutex> guard{mu_};
  return {segments_.begin(), segments_.end()};
}

status segment_catalog::not_retained(uint64_t sequence, uint64_t first_retained) {
  return status{errc::not_retained, "sequence " + std::to_string(sequence) +
                                        " is no longer retained; first retained is " +
                                        std::to_string(first_retained)};
}

result<segment_entry> segment_catalog::segment_for(uint64_t sequence) const {
  std::lock_guard<std::mutex> guard{mu_};
  if (sequence < segments_.front().first_sequence)
    return not_retained(sequence, segments_.front().first_sequence);
  // The last segment starting at or before `sequence`.
  auto after = std::upper_bound(
      segments_.begin(), segments_.end(), sequence,
      [](uint64_t seq, const segment_entry& segment) { return seq < segment.first_sequence; });
  assert(after != segments_.begin());
  const segment_entry& found = *std::prev(after);
  if (sequence > found.last_sequence + 1 || (sequence == found.last_sequence + 1 && !found.active))
    return status{errc::invalid_argument, "sequence " + std::to_string(sequence) +
                                              " is beyond the end of the log (last is " +
                                              std::to_string(last_.load()) + ")"};
  return found;
}

const segment_entry* segment_catalog::find_locked(uint64_t first_sequence) const {
  auto at = std::lower_bound(
      segments_.begin(), segments_.end(), first_sequence,
      [](const segment_entry& segment, uint64_t seq) { return segment.first_sequence < seq; });
  if (at == segments_.end() || at->first_sequence != first_sequence) return nullptr;
  return &*at;
}

segment_catalog::progress segment_catalog::progress_of(uint64_t first_sequence) const {
  std::lock_guard<std::mutex> guard{mu_};
  progress out;
  // Read under the lock, after the sizes: every record up to `durable` lies
  // within the size a reader sees here.
  out.durable_sequence = durable_.load(std::memory_order_acquire);
  if (const segment_entry* segment = find_locked(first_sequence)) {
    out.retained = true;
    out.active = segment->active;
    out.size_bytes = segment->size_bytes;
    out.last_sequence = segment->last_sequence;
  }
  return out;
}

}  // namespace walrus::wal
