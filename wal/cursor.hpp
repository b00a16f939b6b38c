// A cursor reads a log's records in sequence order, across segments, from any
// retained sequence number on, and then follows the log as it grows (a
// tailer's view of the WAL). It only hands out records up to the log's
// durable_sequence as of each read call, so a reader never sees a record that
// a crash could still take back.
//
// Threads: a cursor is used by one thread at a time, which may differ from the
// appenders'; any number of cursors may run concurrently with appends and
// retention. A cursor shares the segment catalog with its log and may outlive
// the log (it then reads up to where the log stopped); the file system must
// outlive both.
//
// Retention rule: a cursor keeps reading a segment it has already opened even
// after retention deletes it (the open file stays readable, as after a POSIX
// unlink); when it needs a segment that is gone, it fails with
// errc::not_retained. Errors are sticky: once a read fails, every later read
// returns the same status.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "wal/file_system.hpp"
#include "wal/format.hpp"
#include "wal/segment_reader.hpp"

namespace walrus::wal {

class segment_catalog;

class cursor {
 public:
  cursor(cursor&&) noexcept;
  cursor& operator=(cursor&&) noexcept;
  ~cursor();

  // Clears `batch` and fills it with up to `max_records` records in order.
  // An empty batch means "no more for now": call again later to see new
  // records. The views point into the cursor's read buffer and stay valid
  // until the next call on this cursor. Unknown ignorable records are
  // skipped. errc::not_retained when the records needed were dropped,
  // errc::corruption naming file and offset when they are damaged. Records
  // read before a failure are returned first; the failure comes with the
  // next call.
  [[nodiscard]] status read(std::vector<record_view>& batch, size_t max_records = 1024);

  // One record: true and `out` filled, or false for "no more for now".
  // `out` stays valid until the next call on this cursor.
  [[nodiscard]] result<bool> next(record_view& out);

  // The sequence the next record returned will have.
  uint64_t next_sequence() const { return next_; }

 private:
  friend class log;
  cursor(std::shared_ptr<const segment_catalog> catalog, uint64_t sequence, size_t chunk_bytes);

  enum class stop : uint8_t { batch_full, caught_up, buffer_boundary, segment_end };

  [[nodiscard]] status fill(std::vector<record_view>& batch, size_t max_records);
  [[nodiscard]] status enter_segment();
  [[nodiscard]] result<bool> refresh_limit(uint64_t& durable);
  [[nodiscard]] result<stop> read_segment(std::vector<record_view>& batch, size_t max_records,
                                          uint64_t durable);
  status corruption_at(uint64_t offset, const std::string& what) const;

  std::shared_ptr<const segment_catalog> catalog_;
  uint64_t next_ = 0;       // next sequence to hand out
  uint64_t file_next_ = 0;  // sequence of the next record in the open segment
  uint64_t segment_first_ = 0;
  std::string path_;
  std::unique_ptr<file> file_;  // the open segment, or null between segments
  segment_reader reader_;
  std::vector<record_view> single_;  // next()'s one-record batch
  status failure_;
};

}  // namespace walrus::wal
