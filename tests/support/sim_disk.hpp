// One process's view of a simulated disk (a wal::memory_file_system). When
// the simulation crashes a node it fences the view the dead process used:
// every later call through it fails with EIO, so actors of the dead
// incarnation that have not processed their exit yet can no longer touch the
// files the next incarnation recovers (a retention round removing a segment,
// an append, a sync). Handles opened before a crash already fail through the
// memory file system's own crash generation.
#pragma once

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "wal/file_system.hpp"
#include "wal/memory_file_system.hpp"

namespace walrus::testing {

class sim_disk_view final : public wal::file_system {
 public:
  explicit sim_disk_view(wal::memory_file_system& disk) : disk_(disk) {}

  void fence() { fenced_ = true; }

  result<std::unique_ptr<wal::file>> open(const std::string& path, wal::open_mode mode) override {
    if (fenced_) return gone("open", path);
    return disk_.open(path, mode);
  }
  result<std::vector<std::string>> list(const std::string& dir) override {
    if (fenced_) return gone("opendir", dir);
    return disk_.list(dir);
  }
  status remove(const std::string& path) override {
    if (fenced_) return gone("unlink", path);
    return disk_.remove(path);
  }
  status rename(const std::string& from, const std::string& to) override {
    if (fenced_) return gone("rename", from);
    return disk_.rename(from, to);
  }
  status create_directories(const std::string& dir) override {
    if (fenced_) return gone("mkdir", dir);
    return disk_.create_directories(dir);
  }
  status sync_dir(const std::string& dir) override {
    if (fenced_) return gone("fsync", dir);
    return disk_.sync_dir(dir);
  }
  result<std::chrono::system_clock::time_point> modified_time(const std::string& path) override {
    if (fenced_) return gone("stat", path);
    return disk_.modified_time(path);
  }

 private:
  static status gone(const char* call, const std::string& path) {
    return wal::errno_status(call, path, EIO);
  }

  wal::memory_file_system& disk_;
  bool fenced_ = false;
};

// A node's disk and every view a process of that node opened on it. The
// views live as long as the disk: logs of dead incarnations may still hold
// them.
struct sim_disk {
  explicit sim_disk(uint64_t seed) : memory(std::make_unique<wal::memory_file_system>(seed)) {}

  // A view for a new incarnation of the node's process.
  sim_disk_view& boot() {
    views.push_back(std::make_unique<sim_disk_view>(*memory));
    return *views.back();
  }

  // Power loss or process crash: the current incarnation is gone.
  void crash(wal::memory_file_system::crash_mode mode) {
    if (!views.empty()) views.back()->fence();
    memory->crash(mode);
  }

  std::unique_ptr<wal::memory_file_system> memory;
  std::vector<std::unique_ptr<sim_disk_view>> views;
};

}  // namespace walrus::testing
