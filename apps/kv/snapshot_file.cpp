// Snapshot files: written atomically (temporary file, fdatasync, rename,
// directory fsync) and loaded through the same checks as a network transfer.
#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "apps/kv/snapshot.hpp"

namespace walrus::kv {

namespace {

constexpr size_t read_piece_bytes = 1024 * 1024;

status errno_status(const char* call, const std::string& path, int error_number) {
  auto code = error_number == ENOSPC || error_number == EDQUOT ? errc::disk_full : errc::io_error;
  return status{code, std::string{call} + " " + path + ": " + std::strerror(error_number) +
                          " (errno " + std::to_string(error_number) + ")"};
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Closes the descriptor on every path out.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

status write_all(int fd, const std::string& path, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return status{};
}

status sync_dir(const std::string& dir) {
  fd_guard fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (fd.get() < 0) return errno_status("open", dir, errno);
  if (::fsync(fd.get()) != 0) return errno_status("fsync", dir, errno);
  return status{};
}

// Streams the snapshot into the open temporary file and makes it durable.
result<snapshot_info> write_and_sync(snapshot_writer& writer, int fd, const std::string& path) {
  std::string chunk;
  for (;;) {
    chunk.clear();
    auto more = writer.next_chunk(chunk);
    if (!more) return std::move(more).error();
    if (!*more) break;
    if (auto st = write_all(fd, path, chunk); !st.ok()) return st;
  }
  if (::fdatasync(fd) != 0) return errno_status("fdatasync", path, errno);
  return writer.info();
}

}  // namespace

result<snapshot_info> write_snapshot_file(store& db, const std::string& path,
                                          snapshot_options opts) {
  auto writer = snapshot_writer::open(db, opts);
  if (!writer) return std::move(writer).error();
  auto temp = path + ".tmp";
  fd_guard fd{::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (fd.get() < 0) return errno_status("open", temp, errno);
  auto written = write_and_sync(**writer, fd.get(), temp);
  if (written && ::close(fd.release()) != 0) written = errno_status("close", temp, errno);
  if (written && ::rename(temp.c_str(), path.c_str()) != 0)
    written = errno_status("rename", temp + " to " + path, errno);
  if (!written) {
    ::unlink(temp.c_str());  // best effort: the old snapshot, if any, is intact
    return written;
  }
  if (auto st = sync_dir(parent_dir(path)); !st.ok()) return st;
  return written;
}

result<std::unique_ptr<snapshot_receiver>> snapshot_receiver::open(std::string path,
                                                                   snapshot_options opts) {
  auto temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", temp, errno);
  return std::unique_ptr<snapshot_receiver>{new snapshot_receiver(std::move(path), fd, opts)};
}

snapshot_receiver::snapshot_receiver(std::string path, int fd, snapshot_options opts)
    : path_(std::move(path)), fd_(fd), loader_(opts) {}

snapshot_receiver::~snapshot_receiver() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink((path_ + ".tmp").c_str());
}

status snapshot_receiver::add(uint64_t offset, std::string_view chunk) {
  auto temp = path_ + ".tmp";
  if (fd_ < 0) return status{errc::closed, "snapshot " + temp + " is closed"};
  if (auto st = loader_.add(offset, chunk); !st.ok())
    return status{st.code(), "snapshot " + temp + " " + st.message()};
  return write_all(fd_, temp, chunk);
}

result<snapshot_info> snapshot_receiver::commit(store& db) {
  auto temp = path_ + ".tmp";
  if (fd_ < 0) return status{errc::closed, "snapshot " + temp + " is closed"};
  // Durable first: once the store shows the snapshot, a restart must find it.
  if (::fdatasync(fd_) != 0) return errno_status("fdatasync", temp, errno);
  auto loaded = loader_.finish(db);
  if (!loaded)
    return status{loaded.error().code(), "snapshot " + temp + " " + loaded.error().message()};
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return errno_status("close", temp, errno);
  if (::rename(temp.c_str(), path_.c_str()) != 0)
    return errno_status("rename", temp + " to " + path_, errno);
  if (auto st = sync_dir(parent_dir(path_)); !st.ok()) return st;
  return loaded;
}

result<snapshot_info> load_snapshot_file(const std::string& path, store& db,
                                         snapshot_options opts) {
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) return errno_status("open", path, errno);
  snapshot_loader loader{opts};
  auto named = [&](const status& st) {
    return status{st.code(), "snapshot " + path + " " + st.message()};
  };
  std::string piece(read_piece_bytes, '\0');
  for (;;) {
    auto n = ::read(fd.get(), piece.data(), piece.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read", path, errno);
    }
    if (n == 0) break;
    if (auto st = loader.add(std::string_view{piece.data(), static_cast<size_t>(n)}); !st.ok())
      return named(st);
  }
  auto loaded = loader.finish(db);
  if (!loaded) return named(loaded.error());
  return loaded;
}

}  // namespace walrus::kv
