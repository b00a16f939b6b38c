// Sequential record decoding of one segment file in large chunks: one pread
// of up to `chunk_bytes` (1 MiB by default) feeds many records, and records
// are handed out as views into the chunk. Used by recovery (the whole file)
// and by cursors (up to the size the catalog says is readable).
//
// Buffer bound: max(chunk_bytes, the largest record read so far), plus
// buffers still held through buffer() (a refill never overwrites a held
// buffer: it takes a new one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "wal/file_system.hpp"
#include "wal/format.hpp"

namespace walrus::wal {

class segment_reader {
 public:
  static constexpr size_t default_chunk_bytes = size_t{1} << 20;

  explicit segment_reader(size_t chunk_bytes = default_chunk_bytes);

  // Starts reading `segment` at byte `offset` (past the header); nothing at
  // or beyond `limit` is ever read. The file is borrowed.
  void reset(file* segment, uint64_t offset, uint64_t limit);
  // The readable size grew (the active segment was appended to).
  void extend_limit(uint64_t limit);

  enum class step : uint8_t {
    record,       // `out` holds the next record
    end,          // offset() == limit
    damaged,      // the bytes at offset() are no valid record; see damage()
    need_refill,  // the next record is not buffered and refilling was not allowed
  };

  // Decodes the record at offset(). A refill moves the buffer, invalidating
  // views handed out before; pass allow_refill = false to keep them valid.
  [[nodiscard]] result<step> next(record_view& out, bool allow_refill = true);

  // Where the next record starts (after a `record` step: after that record).
  // The buffer the views handed out since the last refill point into;
  // holding it keeps them valid after later refills.
  std::shared_ptr<const void> buffer() const { return buffer_; }

  uint64_t offset() const { return offset_; }
  uint64_t limit() const { return limit_; }
  decode_outcome damage() const { return damage_; }

 private:
  [[nodiscard]] status refill(size_t wanted);
  size_t buffered() const { return buffer_end_ - buffer_pos_; }

  size_t chunk_bytes_;
  std::shared_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t buffer_pos_ = 0;  // buffer index of offset_
  size_t buffer_end_ = 0;  // bytes valid in buffer_
  file* file_ = nullptr;
  uint64_t offset_ = 0;
  uint64_t limit_ = 0;
  decode_outcome damage_ = decode_outcome::ok;
};

}  // namespace walrus::wal
