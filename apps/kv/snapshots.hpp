// walrus-kv's snapshots in its data folder (DIR/snapshots): what bounds
// recovery time and lets the WAL be trimmed, and what a replica whose
// position the primary no longer retains bootstraps from.
//
//   * start-up loads the newest snapshot, then replays the WAL after it;
//   * a snapshotter thread writes a new one every `every_entries` applied
//     entries (and on BGSAVE), then protects only the WAL after it
//     (wal::log::protect_from) and removes older snapshot files; on a
//     replica it also drops the WAL before it (a primary's WAL is trimmed by
//     the ack tracker, which keeps what connected replicas still need);
//   * the primary's listener serves the newest file (snapshot_source); a
//     replica receives one into a temporary file checked as it arrives
//     (snapshot_sink), installs it into the store, then renames it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "actors/snapshot.hpp"
#include "apps/kv/snapshot.hpp"
#include "apps/kv/store.hpp"
#include "base/status.hpp"
#include "wal/log.hpp"

namespace walrus::kv {

// The snapshot files of a data folder: snapshot-<20-digit sequence>.wkv.
class snapshot_folder {
 public:
  struct entry {
    std::string path;
    uint64_t sequence = 0;
  };

  explicit snapshot_folder(std::string dir) : dir_(std::move(dir)) {}

  // Creates the folder when missing.
  [[nodiscard]] status create() const;
  // The newest snapshot (highest sequence), if any.
  [[nodiscard]] result<std::optional<entry>> newest() const;
  std::string path_for(uint64_t sequence) const;
  // Removes the snapshots older than `sequence` and leftover temporary files.
  void remove_older_than(uint64_t sequence) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Loads the newest snapshot of `folder` into `db` (nothing when there is
// none) and protects the WAL after it; the sequence loaded, or 0.
[[nodiscard]] result<uint64_t> load_newest_snapshot(const snapshot_folder& folder, store& db,
                                                    wal::log& log);

struct snapshot_stats {
  uint64_t count = 0;          // snapshots written by this process
  uint64_t last_sequence = 0;  // of the newest snapshot on disk
  uint64_t last_bytes = 0;
  uint64_t last_duration_ms = 0;
  uint64_t last_unix_time = 0;  // when the newest snapshot was written (0: not by us)
  bool in_progress = false;
  std::string last_error;  // of the last attempt; empty after a success
};

class snapshotter {
 public:
  struct config {
    std::shared_ptr<store> db;
    std::shared_ptr<wal::log> log;
    std::string dir;               // the snapshot folder
    uint64_t every_entries = 0;    // 0: only on request
    bool trim_wal = false;         // drop the WAL before each new snapshot (replicas)
    uint64_t loaded_sequence = 0;  // the snapshot loaded at start-up
    std::chrono::milliseconds poll{200};
  };

  explicit snapshotter(config cfg);
  ~snapshotter();
  snapshotter(const snapshotter&) = delete;
  snapshotter& operator=(const snapshotter&) = delete;

  void start();
  void stop();  // waits for a snapshot being written
  // A snapshot as soon as possible (BGSAVE): false when one is running.
  bool request();
  // Writes one now, on the caller's thread (tests, shutdown).
  [[nodiscard]] result<snapshot_info> save();
  snapshot_stats stats() const;

 private:
  // Waits until the WAL holds `sequence` durably (the writer may still be
  // staging it); an error when the WAL failed or did not get there in 30 s.
  status wait_until_durable(uint64_t sequence);
  void loop();

  config cfg_;
  snapshot_folder folder_;
  std::mutex save_mu_;  // one save at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;   // guarded by mu_
  bool requested_ = false;  // guarded by mu_
  snapshot_stats stats_;    // guarded by mu_
  std::thread thread_;
};

// What the listener serves: the newest snapshot file.
std::shared_ptr<snapshot_source> make_snapshot_source(std::string dir);

// What a replica installs into: `db`, then the file in `dir`; the WAL after
// it is protected from then on.
std::shared_ptr<snapshot_sink> make_snapshot_sink(std::shared_ptr<store> db, std::string dir,
                                                  std::shared_ptr<wal::log> log);

}  // namespace walrus::kv
