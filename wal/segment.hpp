// Segment files on disk: what the log knows about each one (`segment_entry`),
// listing a directory's segments in sequence order and creating a new segment
// with its header. The bytes themselves are defined in wal/format.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.hpp"
#include "wal/file_system.hpp"

namespace walrus::wal {

struct segment_entry {
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;  // first_sequence - 1 while the segment holds no record
  uint64_t size_bytes = 0;     // header plus whole records; readers never look past it
  std::string path;
  bool active = false;  // the one segment appends go to (always the last)

  uint64_t records() const { return last_sequence + 1 - first_sequence; }
};

struct segment_file {
  uint64_t first_sequence = 0;
  std::string name;
};

// The segment files in `dir` ordered by first sequence; other names are
// ignored.
[[nodiscard]] result<std::vector<segment_file>> list_segment_files(file_system& fs,
                                                                   const std::string& dir);

// Creates the segment starting at `first_sequence` and writes its header.
// With `durable`, syncs the file and then the directory so the new segment
// survives a crash.
[[nodiscard]] result<std::unique_ptr<file>> create_segment(file_system& fs, const std::string& dir,
                                                           uint64_t first_sequence, bool durable);

}  // namespace walrus::wal
