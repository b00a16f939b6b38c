// wal::log — the segmented, checksummed write-ahead log (docs/wal-format.md).
// Appends are transactions of one or more records with consecutive sequence
// numbers; opening is recovery; cursors read from any retained sequence and
// follow new appends; retention drops whole old segments.
//
// Threads: every member function is thread-safe. Concurrent appends never
// interleave within one transaction.
//
// Failure contract: the first failed write or fdatasync fails the log for
// good. Every later append and sync returns that same status (errc::io_error
// or errc::disk_full, naming the call, the path and the errno text), so
// nothing is acknowledged that might not be on disk. A failed fdatasync is
// never retried: after a writeback error Linux may drop the dirty pages and
// report success on the next fsync (PostgreSQL's "fsyncgate", 2018). Reopen
// the log to recover what the files really hold.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.hpp"
#include "wal/cursor.hpp"
#include "wal/file_system.hpp"
#include "wal/recovery.hpp"
#include "wal/sync_policy.hpp"
#include "wal/tail_cache.hpp"

namespace walrus::wal {

class segment_catalog;
struct segment_entry;

struct options {
  using clock_function = std::function<std::chrono::system_clock::time_point()>;

  std::string dir;            // created when missing
  file_system* fs = nullptr;  // nullptr: posix_file_system(); must outlive log and cursors
  sync_policy sync = sync_policy::group();
  uint64_t segment_bytes = uint64_t{64} << 20;  // roll threshold (>= 4 KiB)
  recovery_mode recovery = recovery_mode::strict;
  bool verify_all_segments = true;                // false: open scans only the last segment
  uint64_t max_retained_bytes = 0;                // 0: no byte cap
  std::chrono::milliseconds max_retained_age{0};  // 0: no age cap
  bool enforce_retention_on_roll = true;          // apply the caps after every roll
  clock_function clock;                         // "now" for the age cap; default system_clock::now
  size_t cursor_chunk_bytes = size_t{1} << 20;  // one pread per chunk
  // The newest records kept in memory for cursors (tail_cache.hpp): up to
  // this many bytes, in chunks of tail_cache_chunk_bytes. 0: no cache.
  size_t tail_cache_bytes = size_t{16} << 20;
  size_t tail_cache_chunk_bytes = size_t{1} << 20;
};

struct sequence_range {
  uint64_t first = 0;
  uint64_t last = 0;
};

struct retention_report {
  uint64_t segments_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t records_removed = 0;
  uint64_t first_retained = 0;  // first sequence retained afterwards
  std::vector<std::string> removed_files;
};

struct log_stats {
  uint64_t appends = 0;        // successful append calls
  uint64_t records = 0;        // records appended
  uint64_t bytes_written = 0;  // record bytes written (headers included)
  uint64_t syncs = 0;          // fdatasync calls issued on segments
  uint64_t rolls = 0;          // segments started by rolling
};

// Bound of one transaction's framed bytes (and of the log's write buffer).
constexpr uint64_t max_transaction_bytes = uint64_t{2} << 30;

class log {
 public:
  // Called with the new durable sequence whenever it advances; values only
  // increase, several advances may be reported as one. Runs on the thread
  // that advanced durability, outside the log's locks, one call at a time.
  // It should be cheap (wake a tailer) and must not call set_commit_hook.
  using commit_hook = std::function<void(uint64_t durable_sequence)>;

  // Opens (recovers) the log in `opts.dir`; see recovery.hpp.
  [[nodiscard]] static result<std::unique_ptr<log>> open(const options& opts);

  ~log();  // close(), ignoring its status
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  // Appends one transaction: `count` >= 1 records with consecutive sequence
  // numbers, the last flagged commit, written with one write() when it fits
  // in the active segment. Returns when the sync policy is satisfied (see
  // sync_policy.hpp). Payloads may be empty; each is at most
  // max_payload_bytes, all framed records together max_transaction_bytes.
  [[nodiscard]] result<sequence_range> append(const std::string_view* payloads, size_t count);
  [[nodiscard]] result<sequence_range> append(const std::vector<std::string_view>& payloads) {
    return append(payloads.data(), payloads.size());
  }
  [[nodiscard]] result<sequence_range> append(std::string_view payload) {
    return append(&payload, 1);
  }

  // Appends several consecutive transactions with one write (a replica
  // storing a batch): record i ends a transaction when bit i % 8 of byte
  // i / 8 of `commit_bits` is set; the last record must end one. The same
  // rules as append() apply to the whole call: it never spans segments and
  // is durable as one unit.
  [[nodiscard]] result<sequence_range> append_transactions(const std::string_view* payloads,
                                                           size_t count,
                                                           std::string_view commit_bits);

  // Appends records framed elsewhere, as they are (a replica storing what
  // its primary sent): the concatenation of `pieces` is `count` >= 1 whole
  // records of type data with sequences last_sequence() + 1 on, the last of
  // which commits. Their CRCs are the caller's to have checked (the applier
  // verifies every record before storing it); the headers are checked here
  // (errc::invalid_argument naming the record). Written with one write and
  // durable as one unit, like append_transactions.
  [[nodiscard]] result<sequence_range> append_encoded(const std::string_view* pieces,
                                                      size_t piece_count, uint64_t count);

  // Syncs everything appended so far, under every policy (also `none`).
  [[nodiscard]] status sync();

  // Last sequence on stable storage; under `none`, last handed to the OS.
  uint64_t durable_sequence() const;
  // Last sequence appended (0 for a log that never had a record).
  uint64_t last_sequence() const;
  // First sequence retained (last_sequence() + 1 when no record is retained).
  uint64_t first_sequence() const;
  // Total bytes of the retained segment files.
  uint64_t retained_bytes() const;

  // ok, or the failure that stopped the log (or errc::closed after close()).
  [[nodiscard]] status health() const;
  const recovery_report& recovery() const { return recovery_; }
  log_stats stats() const;
  const options& config() const { return options_; }

  // A cursor whose first record is `sequence` (first_sequence() ..
  // last_sequence() + 1). errc::not_retained: "sequence N is no longer
  // retained; first retained is M".
  [[nodiscard]] result<cursor> read_from(uint64_t sequence) const;

  // Removes every segment whose records are all below `sequence`, never the
  // active segment.
  [[nodiscard]] result<retention_report> drop_before(uint64_t sequence);
  // Applies the byte and age caps of the options (oldest segments first,
  // never the active one) with `now` as the time for the age cap.
  [[nodiscard]] result<retention_report> enforce_retention(
      std::chrono::system_clock::time_point now);
  [[nodiscard]] result<retention_report> enforce_retention();  // now = options.clock()

  // Retention (drop_before, the caps) never removes a record at or above
  // `sequence`: a host whose own recovery replays the log from its newest
  // snapshot protects what follows that snapshot. Default: nothing is
  // protected (UINT64_MAX). Lowering it is allowed.
  void protect_from(uint64_t sequence) { protected_from_.store(sequence); }
  uint64_t protected_from() const { return protected_from_.load(); }

  // Discards every record and continues at `next_sequence` (> last_sequence()),
  // which counts as durable at once: a replica that installed a snapshot
  // holding everything up to next_sequence - 1. The old segment files are
  // removed oldest first and the new one is created after them, so a crash
  // in between leaves a contiguous log or an empty one (which opens as a
  // fresh log at sequence 1; the host then calls skip_to again).
  [[nodiscard]] status skip_to(uint64_t next_sequence);

  void set_commit_hook(commit_hook hook);

  // Stops the interval thread and, unless the policy is `none` or the log
  // failed, syncs. Later appends fail with errc::closed. Idempotent.
  [[nodiscard]] status close();

 private:
  log(options opts, recovered_log recovered);

  // log.cpp: the write path.
  [[nodiscard]] result<sequence_range> append_records(const std::string_view* payloads,
                                                      size_t count, std::string_view commit_bits);
  [[nodiscard]] status write_transaction(const std::string_view* payloads, size_t count,
                                         std::string_view commit_bits, uint64_t bytes,
                                         sequence_range& range, bool& rolled);
  [[nodiscard]] status write_encoded(const std::string_view* pieces, size_t piece_count,
                                     uint64_t count, uint64_t bytes, sequence_range& range,
                                     bool& rolled);
  [[nodiscard]] status roll_if_full(uint64_t bytes, bool& rolled);
  [[nodiscard]] status written(uint64_t bytes, const sequence_range& range);
  [[nodiscard]] result<sequence_range> finish_append(const sequence_range& range, bool rolled);
  [[nodiscard]] status roll();
  segment_entry activate(std::shared_ptr<file> created, uint64_t first);
  [[nodiscard]] status park_unsynced(std::shared_ptr<file> sealed);
  char* reserve_buffer(size_t bytes);

  // log_sync.cpp: durability, failure, the commit hook.
  [[nodiscard]] status sync_until(uint64_t target, bool force_round);
  [[nodiscard]] status sync_round();
  [[nodiscard]] status fail(status cause);
  [[nodiscard]] status failure() const;
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  void notify_hook();
  void interval_loop();
  void start_interval_thread();
  void stop_interval_thread();

  // log_retention.cpp
  [[nodiscard]] result<retention_report> remove_segments_before(uint64_t keep_from);
  void enforce_caps_after_roll();
  [[nodiscard]] status skip_locked(uint64_t next_sequence);

  const options options_;
  file_system& fs_;
  const recovery_report recovery_;
  std::shared_ptr<segment_catalog> catalog_;
  std::shared_ptr<tail_cache> cache_;  // written under write_mu_, read by cursors

  // The write path; write_mu_ guards everything down to the buffer.
  mutable std::mutex write_mu_;
  std::shared_ptr<file> active_file_;
  uint64_t active_first_ = 0;  // first sequence of the active segment
  uint64_t active_size_ = 0;   // bytes written to it
  uint64_t last_written_ = 0;
  bool closed_ = false;
  // Under `none`, rolls do not sync: sealed files and the directory wait
  // here for the next sync(). Bound: max_unsynced_sealed handles; beyond
  // that a roll syncs the oldest (dropped segments are forgotten).
  struct unsynced_segment {
    uint64_t first_sequence;
    std::shared_ptr<file> handle;
  };
  static constexpr size_t max_unsynced_sealed = 16;
  std::vector<unsynced_segment> unsynced_sealed_;
  bool dir_unsynced_ = false;
  std::unique_ptr<char[]> buffer_;  // one transaction; bound: see reserve_buffer
  size_t buffer_capacity_ = 0;

  // Group commit: one sync round at a time, others wait for its outcome.
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool sync_running_ = false;  // guarded by sync_mu_

  mutable std::mutex failure_mu_;
  status failure_;  // guarded by failure_mu_; the first failure wins
  std::atomic<bool> failed_{false};

  // The commit hook; `notifying_` makes calls one at a time without a mutex,
  // so a hook may append without deadlocking.
  commit_hook hook_;
  std::atomic<bool> has_hook_{false};
  std::atomic<bool> notifying_{false};
  std::atomic<bool> notify_pending_{false};
  uint64_t last_notified_ = 0;  // guarded by notifying_

  // The interval policy's background syncer.
  std::mutex interval_mu_;
  std::condition_variable interval_cv_;
  bool interval_stop_ = false;  // guarded by interval_mu_
  std::thread interval_thread_;

  std::mutex retention_mu_;  // one retention pass at a time
  std::atomic<uint64_t> protected_from_{UINT64_MAX};

  std::atomic<uint64_t> stat_appends_{0};
  std::atomic<uint64_t> stat_records_{0};
  std::atomic<uint64_t> stat_bytes_{0};
  std::atomic<uint64_t> stat_syncs_{0};
  std::atomic<uint64_t> stat_rolls_{0};
};

}  // namespace walrus::wal
