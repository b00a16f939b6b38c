// The live segments of one log, shared by the log (which appends, rolls and
// drops segments) and its cursors (which may run on other threads and may
// outlive the log). It also publishes the durable sequence, so a reader takes
// "how far may I read" and "where does this segment end" in one consistent
// snapshot.
//
// Invariants (asserted): segments are contiguous in sequence numbers, the last
// one is the only active one, durable <= last written.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "wal/file_system.hpp"
#include "wal/segment.hpp"

namespace walrus::wal {

class segment_catalog {
 public:
  // `segments` is non-empty, contiguous and ends with the active segment.
  segment_catalog(file_system& fs, std::string dir, std::vector<segment_entry> segments,
                  uint64_t durable_sequence);

  file_system& fs() const { return fs_; }
  const std::string& dir() const { return dir_; }

  // -- writer side (the log's write lock serialises these) ---------------------
  void record_written(uint64_t active_size_bytes, uint64_t last_sequence);
  // Seals the active segment and makes `next` (empty, active) the last one.
  void roll(segment_entry next);
  // Raises the durable sequence (never lowers it); true when it moved.
  bool publish_durable(uint64_t sequence);
  // Removes the segments that start before `keep_from` (never the active
  // one) and returns them, oldest first.
  std::vector<segment_entry> remove_before(uint64_t keep_from);
  // Replaces every segment by `next` (empty, active): the log continues at
  // next.first_sequence, and everything before it counts as durable.
  void restart_at(segment_entry next);

  // -- reader side ---------------------------------------------------------------
  uint64_t durable_sequence() const { return durable_.load(std::memory_order_acquire); }
  uint64_t last_sequence() const { return last_.load(std::memory_order_acquire); }
  uint64_t first_sequence() const;
  uint64_t total_bytes() const;
  std::vector<segment_entry> segments() const;

  // The segment holding `sequence`, or the active one when `sequence` is
  // last + 1. errc::not_retained with the exact message when it was dropped.
  [[nodiscard]] result<segment_entry> segment_for(uint64_t sequence) const;

  // How far a reader of the segment starting at `first_sequence` may go.
  struct progress {
    bool retained = false;  // false: the segment was dropped
    bool active = false;
    uint64_t size_bytes = 0;
    uint64_t last_sequence = 0;
    uint64_t durable_sequence = 0;
  };
  progress progress_of(uint64_t first_sequence) const;

  // "sequence N is no longer retained; first retained is M"
  static status not_retained(uint64_t sequence, uint64_t first_retained);

 private:
  void check_invariants_locked() const;
  const segment_entry* find_locked(uint64_t first_sequence) const;

  file_system& fs_;
  const std::string dir_;
  mutable std::mutex mu_;
  std::deque<segment_entry> segments_;  // guarded by mu_
  uint64_t total_bytes_ = 0;            // guarded by mu_
  std::atomic<uint64_t> last_{0};
  std::atomic<uint64_t> durable_{0};
};

}  // namespace walrus::wal
