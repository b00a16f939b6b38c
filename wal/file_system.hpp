// The small storage interface wal/ goes through (LogCabin's and LevelDB's
// `Env` idea): append-only files, positional reads, fdatasync, truncation and
// a few directory operations. `posix_file_system()` is the real one;
// wal/memory_file_system.hpp is an in-memory fake that injects faults for
// tests and the deterministic simulation.
//
// Errors are `status` values whose message names the call, the path and the
// errno text; ENOSPC and EDQUOT map to errc::disk_full, every other failure
// to errc::io_error (a missing file too: the caller knows whether that means
// "no longer retained").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace walrus::wal {

// An open file. One handle is used by one thread at a time; different
// handles to the same file may be used concurrently (the log appends through
// one while cursors read through others).
class file {
 public:
  virtual ~file() = default;

  virtual const std::string& path() const = 0;

  // Appends all `n` bytes at the end of the file with one write() (looping
  // only on a short write). On failure a prefix may have been written.
  [[nodiscard]] virtual status append(const char* data, size_t n) = 0;

  // Appends the concatenation of `pieces` as append() would (POSIX: one
  // writev). The default gathers them into one buffer for append().
  [[nodiscard]] virtual status append_pieces(const std::string_view* pieces, size_t count);

  // Reads up to `n` bytes at `offset`; fewer only at end of file.
  [[nodiscard]] virtual result<size_t> read_at(uint64_t offset, char* out, size_t n) = 0;

  // fdatasync: the data and the size are on stable storage when it succeeds.
  [[nodiscard]] virtual status sync() = 0;

  [[nodiscard]] virtual status truncate(uint64_t size) = 0;
  [[nodiscard]] virtual result<uint64_t> size() = 0;
};

enum class open_mode : uint8_t {
  read_only,   // an existing file, for reading
  read_write,  // an existing file, appends go to its end
  create_new,  // a new empty file (error if it exists), appends go to its end
};

class file_system {
 public:
  virtual ~file_system() = default;

  [[nodiscard]] virtual result<std::unique_ptr<file>> open(const std::string& path,
                                                           open_mode mode) = 0;

  // The names (not paths) of the entries in `dir`, without "." and "..".
  [[nodiscard]] virtual result<std::vector<std::string>> list(const std::string& dir) = 0;

  // Open handles stay valid after a remove (POSIX unlink semantics).
  [[nodiscard]] virtual status remove(const std::string& path) = 0;
  [[nodiscard]] virtual status rename(const std::string& from, const std::string& to) = 0;

  // mkdir -p.
  [[nodiscard]] virtual status create_directories(const std::string& dir) = 0;

  // fsync of the directory: entries created or removed in it are durable.
  [[nodiscard]] virtual status sync_dir(const std::string& dir) = 0;

  [[nodiscard]] virtual result<std::chrono::system_clock::time_point> modified_time(
      const std::string& path) = 0;
};

// The process-wide POSIX implementation (thread-safe, never destroyed).
file_system& posix_file_system();

// "<call> <path>: <strerror> (errno N)" as a status with the matching code.
status errno_status(const char* call, const std::string& path, int error_number);

// `dir` + "/" + `name`.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace walrus::wal
