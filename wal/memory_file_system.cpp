#include "wal/memory_file_system.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <thread>

namespace walrus::wal {

// Invariant: durable.size() >= dirty_from, and data[0, dirty_from) equals
// durable[0, dirty_from) except where a failed sync zeroed the durable copy.
struct memory_file_system::inode {
  std::string data;     // what reads see
  std::string durable;  // what a crash leaves (before tearing)
  uint64_t dirty_from = 0;
  time_point modified;
};

namespace {

std::string strip_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

class memory_file final : public file {
 public:
  memory_file(memory_file_system* fs, std::string path,
              std::shared_ptr<memory_file_system::inode> node, uint64_t generation, bool writable)
      : fs_(fs),
        path_(std::move(path)),
        node_(std::move(node)),
        generation_(generation),
        writable_(writable) {}

  const std::string& path() const override { return path_; }

  status append(const char* data, size_t n) override {
    std::lock_guard<std::mutex> guard{fs_->mu_};
    if (auto st = usable("write", true); !st.ok()) return st;
    return fs_->append_locked(*node_, path_, data, n);
  }

  result<size_t> read_at(uint64_t offset, char* out, size_t n) override {
    std::lock_guard<std::mutex> guard{fs_->mu_};
    if (auto st = usable("pread", false); !st.ok()) return st;
    const std::string& data = node_->data;
    if (offset >= data.size()) return size_t{0};
    size_t count = std::min<uint64_t>(n, data.size() - offset);
    std::memcpy(out, data.data() + offset, count);
    return count;
  }

  status sync() override {
    std::chrono::microseconds latency;
    {
      std::lock_guard<std::mutex> guard{fs_->mu_};
      latency = fs_->sync_latency_;
    }
    if (latency.count() > 0) std::this_thread::sleep_for(latency);
    std::lock_guard<std::mutex> guard{fs_->mu_};
    if (auto st = usable("fdatasync", false); !st.ok()) return st;
    return fs_->sync_locked(*node_, path_);
  }

  status truncate(uint64_t size) override {
    std::lock_guard<std::mutex> guard{fs_->mu_};
    if (auto st = usable("ftruncate", true); !st.ok()) return st;
    memory_file_system::inode& node = *node_;
    fs_->used_bytes_ -= std::min<uint64_t>(fs_->used_bytes_, node.data.size());
    node.data.resize(size, '\0');
    fs_->used_bytes_ += node.data.size();
    node.dirty_from = std::min<uint64_t>(node.dirty_from, size);
    node.modified = fs_->clock_();
    return ok_status();
  }

  result<uint64_t> size() override {
    std::lock_guard<std::mutex> guard{fs_->mu_};
    if (auto st = usable("fstat", false); !st.ok()) return st;
    return uint64_t{node_->data.size()};
  }

 private:
  status usable(const char* call, bool write) const {
    if (generation_ != fs_->generation_) return errno_status(call, path_, EIO);
    if (write && !writable_) return errno_status(call, path_, EBADF);
    return ok_status();
  }

  memory_file_system* fs_;
  std::string path_;
  std::shared_ptr<memory_file_system::inode> node_;
  uint64_t generation_;
  bool writable_;
};

memory_file_system::memory_file_system(uint64_t seed)
    : rng_(seed), clock_([] { return std::chrono::system_clock::now(); }) {}

memory_file_system::~memory_file_system() = default;

status memory_file_system::check_parent(const std::string& path) const {
  std::string parent = parent_of(path);
  if (!parent.empty() && dirs_.count(parent) == 0) return errno_status("open", path, ENOENT);
  return ok_status();
}

result<std::unique_ptr<file>> memory_file_system::open(const std::string& path, open_mode mode) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  if (mode == open_mode::create_new) {
    if (found != files_.end()) return errno_status("open", path, EEXIST);
    if (auto st = check_parent(path); !st.ok()) return st;
    auto node = std::make_shared<inode>();
    node->modified = clock_();
    found = files_.emplace(path, entry{std::move(node), false}).first;
  } else if (found == files_.end()) {
    return errno_status("open", path, ENOENT);
  }
  bool writable = mode != open_mode::read_only;
  return std::unique_ptr<file>{
      new memory_file(this, path, found->second.node, generation_, writable)};
}

result<std::vector<std::string>> memory_file_system::list(const std::string& dir) {
  std::lock_guard<std::mutex> guard{mu_};
  std::string normal = strip_slashes(dir);
  if (dirs_.count(normal) == 0) return errno_status("opendir", dir, ENOENT);
  std::vector<std::string> names;
  for (const auto& [path, unused] : files_)
    if (parent_of(path) == normal) names.push_back(path.substr(path.rfind('/') + 1));
  return names;
}

status memory_file_system::remove(const std::string& path) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  if (found == files_.end()) return errno_status("unlink", path, ENOENT);
  used_bytes_ -= std::min<uint64_t>(used_bytes_, found->second.node->data.size());
  files_.erase(found);  // open handles keep the inode
  return ok_status();
}

status memory_file_system::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(from);
  if (found == files_.end()) return errno_status("rename", from, ENOENT);
  if (auto st = check_parent(to); !st.ok()) return st;
  entry moved = found->second;
  files_.erase(found);
  if (auto old = files_.find(to); old != files_.end()) {
    used_bytes_ -= std::min<uint64_t>(used_bytes_, old->second.node->data.size());
    files_.erase(old);
  }
  files_.emplace(to, std::move(moved));
  return ok_status();
}

status memory_file_system::create_directories(const std::string& dir) {
  std::lock_guard<std::mutex> guard{mu_};
  std::string normal = strip_slashes(dir);
  for (size_t pos = 1; pos <= normal.size(); ++pos)
    if (pos == normal.size() || normal[pos] == '/') dirs_.insert(normal.substr(0, pos));
  return ok_status();
}

status memory_file_system::sync_dir(const std::string& dir) {
  std::lock_guard<std::mutex> guard{mu_};
  std::string normal = strip_slashes(dir);
  if (dirs_.count(normal) == 0) return errno_status("open", dir, ENOENT);
  for (auto& [path, item] : files_)
    if (parent_of(path) == normal) item.entry_durable = true;
  return ok_status();
}

result<memory_file_system::time_point> memory_file_system::modified_time(const std::string& path) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  if (found == files_.end()) return errno_status("stat", path, ENOENT);
  return found->second.node->modified;
}

status memory_file_system::append_locked(inode& node, const std::string& path, const char* data,
                                         size_t n) {
  ++write_calls_;
  size_t keep = n;
  int error_number = 0;
  if (next_write_error_ != 0) {
    keep = std::min(n, next_write_keep_bytes_);
    error_number = std::exchange(next_write_error_, 0);
  }
  if (capacity_bytes_ != 0 && used_bytes_ + keep > capacity_bytes_) {
    keep = static_cast<size_t>(capacity_bytes_ - std::min(capacity_bytes_, used_bytes_));
    error_number = ENOSPC;
  }
  node.data.append(data, keep);
  used_bytes_ += keep;
  node.modified = clock_();
  if (error_number != 0) return errno_status("write", path, error_number);
  assert(keep == n);
  return ok_status();
}

status memory_file_system::sync_locked(inode& node, const std::string& path) {
  ++sync_calls_;
  assert(node.durable.size() >= node.dirty_from);
  size_t size = node.data.size();
  node.durable.resize(std::max<size_t>(size, node.dirty_from));
  if (next_sync_error_ != 0) {
    // The pages are marked clean without reaching the disk: zeros there.
    std::fill(node.durable.begin() + static_cast<std::ptrdiff_t>(node.dirty_from),
              node.durable.end(), '\0');
    node.durable.resize(size);
    node.dirty_from = size;
    return errno_status("fdatasync", path, std::exchange(next_sync_error_, 0));
  }
  std::copy(node.data.begin() + static_cast<std::ptrdiff_t>(node.dirty_from), node.data.end(),
            node.durable.begin() + static_cast<std::ptrdiff_t>(node.dirty_from));
  node.durable.resize(size);
  node.dirty_from = size;
  return ok_status();
}

void memory_file_system::crash_file(inode& node, crash_mode mode) {
  assert(node.durable.size() >= node.dirty_from);
  std::string survivor;
  uint64_t unsynced = node.data.size() - std::min<uint64_t>(node.data.size(), node.dirty_from);
  switch (mode) {
    case crash_mode::drop_unsynced: survivor = node.durable; break;
    case crash_mode::keep_unsynced:
      survivor = node.durable.substr(0, node.dirty_from);
      survivor.append(node.data, node.dirty_from, std::string::npos);
      break;
    case crash_mode::tear_unsynced: {
      uint64_t keep = rng_() % (unsynced + 1);
      survivor = node.durable.substr(0, node.dirty_from);
      survivor.append(node.data, node.dirty_from, keep);
      break;
    }
  }
  node.data = survivor;
  node.durable = std::move(survivor);
  node.dirty_from = node.data.size();
}

void memory_file_system::crash(crash_mode mode) {
  std::lock_guard<std::mutex> guard{mu_};
  ++generation_;
  used_bytes_ = 0;
  for (auto it = files_.begin(); it != files_.end();) {
    if (!it->second.entry_durable) {
      it = files_.erase(it);
      continue;
    }
    // A fresh inode: handles from before the crash must not see new writes.
    auto node = std::make_shared<inode>(*it->second.node);
    crash_file(*node, mode);
    used_bytes_ += node->data.size();
    it->second.node = std::move(node);
    ++it;
  }
  next_sync_error_ = 0;
  next_write_error_ = 0;
}

void memory_file_system::fail_next_sync(int error_number) {
  assert(error_number != 0);
  std::lock_guard<std::mutex> guard{mu_};
  next_sync_error_ = error_number;
}

void memory_file_system::tear_next_write(size_t keep_bytes, int error_number) {
  assert(error_number != 0);
  std::lock_guard<std::mutex> guard{mu_};
  next_write_error_ = error_number;
  next_write_keep_bytes_ = keep_bytes;
}

void memory_file_system::set_capacity(uint64_t bytes) {
  std::lock_guard<std::mutex> guard{mu_};
  capacity_bytes_ = bytes;
}

void memory_file_system::flip_byte(const std::string& path, uint64_t offset, uint8_t mask) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  assert(found != files_.end());
  inode& node = *found->second.node;
  assert(offset < node.data.size());
  node.data[offset] = static_cast<char>(node.data[offset] ^ mask);
  if (offset < node.durable.size())
    node.durable[offset] = static_cast<char>(node.durable[offset] ^ mask);
}

void memory_file_system::truncate_file(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  assert(found != files_.end());
  inode& node = *found->second.node;
  used_bytes_ -= std::min<uint64_t>(used_bytes_, node.data.size());
  node.data.resize(size, '\0');
  node.durable = node.data;
  node.dirty_from = size;
  used_bytes_ += size;
}

void memory_file_system::set_sync_latency(std::chrono::microseconds latency) {
  std::lock_guard<std::mutex> guard{mu_};
  sync_latency_ = latency;
}

void memory_file_system::set_clock(std::function<time_point()> clock) {
  assert(clock);
  std::lock_guard<std::mutex> guard{mu_};
  clock_ = std::move(clock);
}

bool memory_file_system::exists(const std::string& path) const {
  std::lock_guard<std::mutex> guard{mu_};
  return files_.count(path) != 0;
}

result<std::string> memory_file_system::contents(const std::string& path) const {
  std::lock_guard<std::mutex> guard{mu_};
  auto found = files_.find(path);
  if (found == files_.end()) return errno_status("open", path, ENOENT);
  return found->second.node->data;
}

uint64_t memory_file_system::sync_calls() const {
  std::lock_guard<std::mutex> guard{mu_};
  return sync_calls_;
}

uint64_t memory_file_system::write_calls() const {
  std::lock_guard<std::mutex> guard{mu_};
  return write_calls_;
}

}  // namespace walrus::wal
