// A cursor reads a log's records in sequence order, across segments, from any
// retained sequence number on, and then follows the log as it grows (a
// tailer's view of the WAL). It only hands out records up to the log's
// durable_sequence as of each read call, so a reader never sees a record that
// a crash could still take back.
//
// Records near the end of the log come from the log's tail cache
// (tail_cache.hpp) when it holds them, without a pread; the others from the
// segment files. The views of one read() point into one buffer, owner().
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
#include "wal/tail_cache.hpp"

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

  // The buffer the views of the last read() point into (a tail-cache chunk
  // or a file read buffer), or null before any record was read. Whoever
  // holds it keeps those views valid beyond the next call; the bytes never
  // change.
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // One record: true and `out` filled, or false for "no more for now".
  // `out` stays valid until the next call on this cursor.
  [[nodiscard]] result<bool> next(record_view& out);

  // The sequence the next record returned will have.
  uint64_t next_sequence() const { return next_; }

 private:
  friend class log;
  cursor(std::shared_ptr<const segment_catalog> catalog, std::shared_ptr<const tail_cache> cache,
         uint64_t sequence, size_t chunk_bytes);

  enum class stop : uint8_t { batch_full, caught_up, buffer_boundary, segment_end };

  [[nodiscard]] status fill(std::vector<record_view>& batch, size_t max_records);
  bool read_cached(std::vector<record_view>& batch, size_t max_records);
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
  std::shared_ptr<const void> owner_;
  // Reading from the tail cache: the chunk and the byte offset of record
  // next_ in it. Where that is in the file too: a later file read starts
  // there instead of scanning its segment from the start.
  std::shared_ptr<const tail_cache> cache_;
  std::shared_ptr<const tail_cache::chunk> chunk_;
  size_t chunk_offset_ = 0;
  uint64_t chunk_next_ = 0;  // the sequence at chunk_offset_
};

}  // namespace walrus::wal
