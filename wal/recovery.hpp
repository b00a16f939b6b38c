// Opening a log directory is recovering it (docs/wal-format.md section 5):
// scan the segments, truncate a torn tail of the last one back to its last
// whole transaction, and refuse (or, in skip mode, set aside) damage anywhere
// else. `log::open` runs this; its report stays available from the log.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "wal/file_system.hpp"
#include "wal/segment.hpp"

namespace walrus::wal {

enum class recovery_mode : uint8_t {
  // A torn tail is truncated; any other damage fails open with
  // errc::corruption naming the file and the byte offset.
  strict,
  // Damage is not fatal: the damaged segment and every segment before it are
  // renamed to "<name>.skipped" and the log resumes at the next good segment
  // (or, when the last segment was damaged, at a new empty segment numbered
  // after the highest sequence seen). The loss is reported.
  skip_damaged_segments,
};

struct recovery_report {
  uint64_t segments = 0;          // segments retained after recovery
  uint64_t segments_scanned = 0;  // segments whose records were all checked
  uint64_t records = 0;           // records kept in the scanned segments
  uint64_t first_sequence = 0;    // first retained sequence after recovery
  uint64_t last_sequence = 0;     // last sequence after recovery (0: empty log)

  // The torn tail of the last segment.
  std::string tail_file;      // path of the truncated segment, empty when none
  uint64_t truncated_to = 0;  // its size after truncation
  uint64_t dropped_bytes = 0;
  uint64_t dropped_records = 0;  // whole records of the unfinished transaction
  std::string tail_damage;       // "offset 4711: crc mismatch", empty when clean

  // Skip mode only: what was set aside.
  std::vector<std::string> skipped_files;  // the new ".skipped" paths
  uint64_t skipped_bytes = 0;
  uint64_t lost_first = 0;  // lost sequence range, 0..0 when nothing was lost
  uint64_t lost_last = 0;
  std::vector<std::string> damage;  // one message per damaged segment

  bool truncated() const { return !tail_file.empty(); }
  bool lost_data() const { return !skipped_files.empty(); }
  std::string to_string() const;
};

struct recovery_options {
  recovery_mode mode = recovery_mode::strict;
  bool verify_all_segments = true;  // false: only the last segment is scanned
  bool durable = true;              // sync repairs and every segment before use
};

struct recovered_log {
  std::vector<segment_entry> segments;  // contiguous, the last one active
  std::unique_ptr<file> active_file;    // the last segment, open for appending
  recovery_report report;
};

// Creates `dir` when missing; an empty directory gets its first segment.
[[nodiscard]] result<recovered_log> recover(file_system& fs, const std::string& dir,
                                            const recovery_options& options);

}  // namespace walrus::wal
