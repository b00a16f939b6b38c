#include "wal/file_system.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace walrus::wal {

status errno_status(const char* call, const std::string& path, int error_number) {
  assert(error_number != 0);
  errc code = (error_number == ENOSPC || error_number == EDQUOT) ? errc::disk_full : errc::io_error;
  std::string message = call;
  message += ' ';
  message += path;
  message += ": ";
  message += std::strerror(error_number);
  message += " (errno ";
  message += std::to_string(error_number);
  message += ')';
  return status{code, std::move(message)};
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

status file::append_pieces(const std::string_view* pieces, size_t count) {
  if (count == 1) return append(pieces[0].data(), pieces[0].size());
  std::string gathered;
  for (size_t i = 0; i < count; ++i) gathered += pieces[i];
  return append(gathered.data(), gathered.size());
}

namespace {

class posix_file final : public file {
 public:
  posix_file(int fd, std::string path) : fd_(fd), path_(std::move(path)) { assert(fd_ >= 0); }
  ~posix_file() override { ::close(fd_); }

  const std::string& path() const override { return path_; }

  status append(const char* data, size_t n) override {
    while (n > 0) {
      ssize_t written = ::write(fd_, data, n);
      if (written < 0) {
        if (errno == EINTR) continue;
        return errno_status("write", path_, errno);
      }
      // A short write is followed by another write(), which reports the
      // cause (ENOSPC) if there is one.
      assert(static_cast<size_t>(written) <= n);
      data += written;
      n -= static_cast<size_t>(written);
    }
    return ok_status();
  }

  status append_pieces(const std::string_view* pieces, size_t count) override {
    constexpr size_t max_iov = 64;
    if (count == 1 || count > max_iov) return file::append_pieces(pieces, count);
    iovec iov[max_iov];
    for (size_t i = 0; i < count; ++i)
      iov[i] = {const_cast<char*>(pieces[i].data()), pieces[i].size()};
    size_t first = 0;
    while (first < count) {
      ssize_t written = ::writev(fd_, iov + first, static_cast<int>(count - first));
      if (written < 0) {
        if (errno == EINTR) continue;
        return errno_status("writev", path_, errno);
      }
      // A short write: skip what went out, write the rest (as append does).
      auto left = static_cast<size_t>(written);
      while (first < count && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < count) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return ok_status();
  }

  result<size_t> read_at(uint64_t offset, char* out, size_t n) override {
    size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return errno_status("pread", path_, errno);
      }
      if (got == 0) break;  // end of file
      done += static_cast<size_t>(got);
    }
    return done;
  }

  status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
    return ok_status();
  }

  status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return errno_status("ftruncate", path_, errno);
    return ok_status();
  }

  result<uint64_t> size() override {
    struct stat info;
    if (::fstat(fd_, &info) != 0) return errno_status("fstat", path_, errno);
    return static_cast<uint64_t>(info.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class posix_fs final : public file_system {
 public:
  result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case open_mode::read_only: flags |= O_RDONLY; break;
      case open_mode::read_write: flags |= O_RDWR | O_APPEND; break;
      case open_mode::create_new: flags |= O_RDWR | O_APPEND | O_CREAT | O_EXCL; break;
    }
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_status("open", path, errno);
    return std::unique_ptr<file>{new posix_file(fd, path)};
  }

  result<std::vector<std::string>> list(const std::string& dir) override {
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr) return errno_status("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(handle)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int error_number = errno;
    ::closedir(handle);
    if (error_number != 0) return errno_status("readdir", dir, error_number);
    return names;
  }

  status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_status("unlink", path, errno);
    return ok_status();
  }

  status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_status("rename", from, errno);
    return ok_status();
  }

  status create_directories(const std::string& dir) override {
    assert(!dir.empty());
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos != dir.size() && dir[pos] != '/') continue;
      std::string prefix = dir.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
        return errno_status("mkdir", prefix, errno);
    }
    return ok_status();
  }

  status sync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open", dir, errno);
    int rc = ::fsync(fd);
    int error_number = errno;
    ::close(fd);
    if (rc != 0) return errno_status("fsync", dir, error_number);
    return ok_status();
  }

  result<std::chrono::system_clock::time_point> modified_time(const std::string& path) override {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) return errno_status("stat", path, errno);
    auto since_epoch =
        std::chrono::seconds{info.st_mtim.tv_sec} + std::chrono::nanoseconds{info.st_mtim.tv_nsec};
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch)};
  }
};

}  // namespace

file_system& posix_file_system() {
  static posix_fs* instance = new posix_fs;  // never destroyed: usable from static dtors
  return *instance;
}

}  // namespace walrus::wal
