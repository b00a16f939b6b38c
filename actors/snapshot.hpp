// Snapshots for bootstrapping replicas (docs/protocol.md §7). A replica
// whose position the primary no longer retains gets the newest snapshot the
// host offers, then streams from the snapshot's sequence + 1.
//
//   * primary: the host hands the listener a snapshot_source; each transfer
//     reads one snapshot_reader in chunks, paced by the replica's acks;
//   * replica: the host hands the replica a snapshot_sink; the applier
//     writes the chunks to it and, once the transport checked length and
//     CRC32C, installs it (the state machine then holds every entry up to
//     the snapshot's sequence) and restarts its WAL after that sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace walrus {

// One snapshot, read at any offset. Used by one connection at a time.
class snapshot_reader {
 public:
  virtual ~snapshot_reader() = default;
  // The snapshot holds every entry up to this sequence.
  virtual uint64_t sequence() const = 0;
  virtual uint64_t size() const = 0;
  // Reads up to `max` bytes at `offset` (< size()) into `out`; the count
  // read (> 0), or an error naming the cause.
  [[nodiscard]] virtual result<size_t> read(uint64_t offset, char* out, size_t max) = 0;
};

// Where the primary's snapshots come from. Called from the connection's
// actor; must be thread-safe when several replicas bootstrap at once.
class snapshot_source {
 public:
  virtual ~snapshot_source() = default;
  // The newest snapshot, or errc::not_retained when there is none.
  [[nodiscard]] virtual result<std::unique_ptr<snapshot_reader>> open_latest() = 0;
};

// A snapshot_reader over a file holding exactly the snapshot's bytes (the
// file stays readable while open, even if it is replaced or removed).
[[nodiscard]] result<std::unique_ptr<snapshot_reader>> open_snapshot_file(const std::string& path,
                                                                          uint64_t sequence);

// Where a replica's incoming snapshot goes. Called from the applier only,
// in this order: begin, write..., then install or abort.
class snapshot_sink {
 public:
  virtual ~snapshot_sink() = default;
  // A snapshot of `total_bytes` holding every entry up to `sequence` starts
  // (any unfinished one is dropped).
  [[nodiscard]] virtual status begin(uint64_t sequence, uint64_t total_bytes) = 0;
  // The next bytes, at contiguous offsets from 0.
  [[nodiscard]] virtual status write(uint64_t offset, std::string_view data) = 0;
  // Every byte arrived and checked out: replace the state machine's state
  // with the snapshot, durably, before returning. Afterwards the state
  // machine's applied_sequence() is the snapshot's sequence. On error the
  // previous state must be intact.
  [[nodiscard]] virtual status install() = 0;
  // The transfer ended early (link lost, bad data): forget it.
  virtual void abort() = 0;
};

}  // namespace walrus
