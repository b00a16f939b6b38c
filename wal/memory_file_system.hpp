// An in-memory `file_system` that can fail the way disks and kernels fail, for
// the WAL's tests and the deterministic simulation (LevelDB's log_test,
// LogCabin's MemoryLog). Deterministic for a given seed and sequence of calls,
// and thread-safe: one mutex guards every file, handle and fault.
//
// Crash model. Every file has the bytes reads see and the bytes a power loss
// would leave ("durable"). `file::sync()` makes the first equal the second.
// `crash()` replaces every file by what survives: synced bytes always; of the
// bytes written since the last sync none, all, or a seeded random prefix (a
// torn write). A file whose directory entry was never synced (`sync_dir`)
// disappears. Handles opened before a crash fail with EIO afterwards: the
// process that held them is gone.
//
// Fsync failure model (what PostgreSQL learned in 2018): when a sync fails,
// the kernel has already marked the dirty pages clean. The bytes stay visible
// to reads, but they never reach the disk: a later sync that succeeds does not
// write them, and after a crash they read as zeros.
//
// Not modelled: removals and renames are durable at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include "wal/file_system.hpp"

namespace walrus::wal {

class memory_file_system final : public file_system {
 public:
  using time_point = std::chrono::system_clock::time_point;

  explicit memory_file_system(uint64_t seed = 1);
  ~memory_file_system() override;

  // -- file_system ------------------------------------------------------------
  result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override;
  result<std::vector<std::string>> list(const std::string& dir) override;
  status remove(const std::string& path) override;
  status rename(const std::string& from, const std::string& to) override;
  status create_directories(const std::string& dir) override;
  status sync_dir(const std::string& dir) override;
  result<time_point> modified_time(const std::string& path) override;

  // -- faults -----------------------------------------------------------------
  enum class crash_mode : uint8_t {
    drop_unsynced,  // only synced bytes survive
    tear_unsynced,  // synced bytes plus a seeded random prefix of the rest
    keep_unsynced,  // everything written survives (the OS flushed in time)
  };
  void crash(crash_mode mode = crash_mode::tear_unsynced);

  // The next file sync fails with `error_number`; the bytes it should have
  // persisted are lost as described above.
  void fail_next_sync(int error_number = EIO);

  // The next append writes only its first `keep_bytes` bytes, then fails.
  void tear_next_write(size_t keep_bytes, int error_number = EIO);

  // Total bytes all files may hold; an append beyond it writes the prefix
  // that fits and fails with ENOSPC (disk full). 0 = unlimited.
  void set_capacity(uint64_t bytes);

  // XORs one byte with `mask`, in memory and on "disk" (media corruption).
  void flip_byte(const std::string& path, uint64_t offset, uint8_t mask = 0xFF);

  // Sets the size in memory and on "disk" (an external truncate, synced).
  void truncate_file(const std::string& path, uint64_t size);

  // Every file sync first sleeps this long outside the lock, like a disk
  // flush (0 by default). Makes group commit observable in tests.
  void set_sync_latency(std::chrono::microseconds latency);

  // Modification times come from here (default: system_clock::now).
  void set_clock(std::function<time_point()> clock);

  // -- inspection -------------------------------------------------------------
  bool exists(const std::string& path) const;
  // The bytes reads see (an io_error when the file does not exist).
  result<std::string> contents(const std::string& path) const;
  uint64_t sync_calls() const;
  uint64_t write_calls() const;

  struct inode;  // public for the handle type in the source file

 private:
  friend class memory_file;
  struct entry {
    std::shared_ptr<inode> node;
    bool entry_durable = false;  // directory entry synced
  };

  status check_parent(const std::string& path) const;
  void crash_file(inode& node, crash_mode mode);
  status append_locked(inode& node, const std::string& path, const char* data, size_t n);
  status sync_locked(inode& node, const std::string& path);

  mutable std::mutex mu_;
  std::map<std::string, entry> files_;
  std::set<std::string> dirs_;
  std::mt19937_64 rng_;
  std::function<time_point()> clock_;
  uint64_t generation_ = 0;  // bumped by crash(); stale handles fail
  uint64_t used_bytes_ = 0;
  uint64_t capacity_bytes_ = 0;
  int next_sync_error_ = 0;
  int next_write_error_ = 0;
  size_t next_write_keep_bytes_ = 0;
  std::chrono::microseconds sync_latency_{0};
  uint64_t sync_calls_ = 0;
  uint64_t write_calls_ = 0;
};

}  // namespace walrus::wal
