#include "actors/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace walrus {
namespace {

class file_reader final : public snapshot_reader {
 public:
  file_reader(int fd, std::string path, uint64_t sequence, uint64_t size)
      : fd_(fd), path_(std::move(path)), sequence_(sequence), size_(size) {}
  ~file_reader() override { ::close(fd_); }
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;

  uint64_t sequence() const override { return sequence_; }
  uint64_t size() const override { return size_; }

  result<size_t> read(uint64_t offset, char* out, size_t max) override {
    for (;;) {
      auto n = ::pread(fd_, out, max, static_cast<off_t>(offset));
      if (n > 0) return static_cast<size_t>(n);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0)
        return status{errc::io_error, "snapshot " + path_ + " ends at " + std::to_string(offset) +
                                          " of " + std::to_string(size_) + " bytes"};
      return status{errc::io_error, "pread " + path_ + ": " + std::strerror(errno)};
    }
  }

 private:
  int fd_;
  std::string path_;
  uint64_t sequence_;
  uint64_t size_;
};

}  // namespace

result<std::unique_ptr<snapshot_reader>> open_snapshot_file(const std::string& path,
                                                            uint64_t sequence) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return status{errc::io_error, "open " + path + ": " + std::strerror(errno)};
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int err = errno;
    ::close(fd);
    return status{errc::io_error, "fstat " + path + ": " + std::strerror(err)};
  }
  return std::unique_ptr<snapshot_reader>{
      new file_reader(fd, path, sequence, static_cast<uint64_t>(info.st_size))};
}

}  // namespace walrus
