// The newest records of a log, in memory, exactly as the writer framed them.
//
// The writer frames each transaction straight into the cache's current chunk
// and writes it to the segment file from there (no extra copy); once the
// write succeeded it commits those bytes. Cursors near the end of the log
// (replication tailers) then read records from the chunks instead of the
// file, and hand them on without copying by holding the chunk
// (PostgreSQL's walsenders read recent WAL from wal_buffers the same way).
//
// Invariants: the chunks listed hold one contiguous run of sequences, in
// order; a chunk's bytes up to `committed_bytes` never change; one chunk
// holds records of one segment only, so a position in a chunk is also a
// position in a file. A transaction larger than a chunk is not cached and
// empties the cache, as does a skip (contiguity over completeness).
//
// Bound: at most `budget_bytes` of chunks are listed (at least one chunk).
// An evicted chunk lives on while a reader holds it; a chunk nobody holds
// any more is reused for the next one.
//
// Threads: reserve/commit/clear come from the log's writer under its write
// lock; find from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace walrus::wal {

class tail_cache {
 public:
  struct chunk {
    explicit chunk(size_t bytes) : data(new char[bytes]), capacity(bytes) {}

    const std::unique_ptr<char[]> data;
    const size_t capacity;
    // Set before the chunk is listed, constant afterwards.
    uint64_t first_sequence = 0;  // of its first record
    uint64_t segment_first = 0;   // the segment holding its records
    uint64_t file_offset = 0;     // of its first byte in that segment
    // Advanced by commit: the bytes and the last sequence written and
    // committed (first_sequence - 1 while none). Readers load
    // committed_last first; the bytes of every record up to it are then
    // committed.
    std::atomic<size_t> committed_bytes{0};
    std::atomic<uint64_t> committed_last{0};

    uint64_t last_sequence() const { return committed_last.load(std::memory_order_acquire); }
  };

  // budget_bytes 0 disables the cache (reserve always says no).
  tail_cache(size_t budget_bytes, size_t chunk_bytes);

  // -- writer side ---------------------------------------------------------------

  // Where to frame a transaction of `bytes` bytes that starts at
  // `first_sequence` and goes to `file_offset` of the segment starting at
  // `segment_first`; nullptr when it is not cached (then the cache is empty
  // afterwards). The memory is the writer's until commit() or the next
  // reserve().
  char* reserve(size_t bytes, uint64_t first_sequence, uint64_t segment_first,
                uint64_t file_offset);
  // The reserved transaction is written: `bytes` bytes, ending at `last_sequence`.
  void commit(size_t bytes, uint64_t last_sequence);
  // Forgets every record (the log skipped ahead, or wrote around the cache).
  void clear();

  // -- reader side ---------------------------------------------------------------

  // The chunk that holds committed record `sequence`, or null.
  std::shared_ptr<const chunk> find(uint64_t sequence) const;

  size_t budget_bytes() const { return budget_bytes_; }

 private:
  std::shared_ptr<chunk> make_chunk();

  const size_t budget_bytes_;
  const size_t chunk_bytes_;
  mutable std::mutex mu_;                      // guards the list, not the bytes
  std::deque<std::shared_ptr<chunk>> chunks_;  // oldest first
  std::shared_ptr<chunk> spare_;               // evicted, held by nobody: reused
  bool reserved_ = false;                      // writer only: reserve() said yes
};

}  // namespace walrus::wal
