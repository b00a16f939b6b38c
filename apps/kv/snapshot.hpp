// Snapshots of the walrus-kv store: the whole content at one applied
// sequence, in the format of snapshot_format.hpp. They bound recovery time
// (load the newest file, replay the WAL after its sequence), let the WAL be
// trimmed, and bootstrap replicas over the network (SnapshotBegin, then the
// bytes as SnapshotChunks, then SnapshotEnd{total_bytes, crc32c}).
//
// Memory: the writer walks a frozen store (store::begin_snapshot: copy-on-
// write per shard, no second copy) and holds one block. The loader builds
// the new content beside the store and installs it only once everything
// checked out, so a store being replaced holds old + new until install;
// at start-up (empty store) that is one copy. The loader buffers at most one
// block (<= max_block_bytes) plus the chunk given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "apps/kv/store.hpp"
#include "base/status.hpp"

namespace walrus::kv {

struct snapshot_options {
  // Records are grouped into blocks of about this size; one larger record
  // gets a block of its own.
  size_t block_bytes = 64 * 1024;
  // The largest block a loader accepts and a writer writes: keep it above
  // the RESP parser's max_request_bytes, or a key set by a client could not
  // be snapshotted (the writer fails with errc::size_limit_exceeded).
  size_t max_block_bytes = 64 * 1024 * 1024 + 64 * 1024;
};

struct snapshot_info {
  uint64_t sequence = 0;  // the state holds every entry up to here
  uint64_t records = 0;
  uint64_t bytes = 0;   // the whole snapshot
  uint32_t crc32c = 0;  // of the whole snapshot (SnapshotEnd.crc32c)
};

// Produces the bytes of a snapshot of a store, a chunk at a time. The store
// stays frozen (copy-on-write) until the writer is done or destroyed; one
// writer per store at a time.
class snapshot_writer {
 public:
  // errc::invalid_transition when the store has a snapshot open already.
  [[nodiscard]] static result<std::unique_ptr<snapshot_writer>> open(store& db,
                                                                     snapshot_options opts = {});

  explicit snapshot_writer(std::unique_ptr<store::snapshot_cursor> cursor,
                           snapshot_options opts = {});

  uint64_t sequence() const noexcept { return cursor_->sequence(); }

  // Appends the next chunk to `out` (the header with the first block, then
  // a block, the trailer last): true, or false when the snapshot is
  // complete. errc::size_limit_exceeded for a record above max_block_bytes.
  [[nodiscard]] result<bool> next_chunk(std::string& out);

  // Of everything produced so far; complete once next_chunk returned false.
  const snapshot_info& info() const noexcept { return info_; }

 private:
  void append_block(std::string& out, uint8_t type, std::string_view payload);
  [[nodiscard]] status fill_records();

  std::unique_ptr<store::snapshot_cursor> cursor_;
  snapshot_options opts_;
  snapshot_info info_;
  std::string payload_;  // the block being built
  record_ref pending_;   // a record read from the cursor, not yet encoded
  bool has_pending_ = false;
  bool header_done_ = false;
  bool records_done_ = false;
  bool trailer_done_ = false;
  uint64_t content_hash_ = 0;
};

// Takes snapshot bytes in chunks of any size, checks them as they arrive
// (header, block CRCs, record structure, duplicate keys) and installs the
// content into a store at finish() only when all of it checked out.
// The first error is sticky; messages name the stream offset.
class snapshot_loader {
 public:
  explicit snapshot_loader(snapshot_options opts = {});

  // The chunk at stream offset `offset`, which must be bytes_received()
  // (errc::protocol_violation otherwise).
  [[nodiscard]] status add(uint64_t offset, std::string_view chunk);
  [[nodiscard]] status add(std::string_view chunk) { return add(info_.bytes, chunk); }

  // End of a network transfer: checks total size and CRC32C against
  // SnapshotEnd, that the trailer was the last block, then installs.
  [[nodiscard]] result<snapshot_info> finish(uint64_t total_bytes, uint32_t crc32c, store& db);
  // End of a file: the structural checks only, then installs.
  [[nodiscard]] result<snapshot_info> finish(store& db);

  uint64_t bytes_received() const noexcept { return info_.bytes; }
  bool header_seen() const noexcept { return header_seen_; }
  uint64_t sequence() const noexcept { return info_.sequence; }  // once header_seen()

 private:
  [[nodiscard]] status parse_header(std::string_view bytes);
  [[nodiscard]] status parse_block(uint8_t type, std::string_view payload, uint64_t offset);
  [[nodiscard]] status parse_records(std::string_view payload, uint64_t offset);
  [[nodiscard]] status parse_trailer(std::string_view payload, uint64_t offset);
  status fail(errc code, uint64_t offset, const std::string& what);

  snapshot_options opts_;
  snapshot_info info_;
  std::string pending_;  // bytes of an incomplete header or block
  store_image image_;
  uint64_t content_hash_ = 0;
  bool header_seen_ = false;
  bool trailer_seen_ = false;
  status error_;
};

// Writes a snapshot of `db` to `path` atomically: `path`.tmp, fdatasync,
// rename, fsync of the directory. Errors name the call, the path and errno
// (errc::disk_full for ENOSPC/EDQUOT, errc::io_error otherwise).
[[nodiscard]] result<snapshot_info> write_snapshot_file(store& db, const std::string& path,
                                                        snapshot_options opts = {});

// Receives a snapshot arriving in pieces (a replica's bootstrap): the bytes
// go to `path`.tmp and through a snapshot_loader as they come; commit()
// checks the whole, installs it into `db`, then makes the file durable as
// `path` (fdatasync, rename, directory fsync). Dropping an uncommitted
// receiver removes the temporary file.
class snapshot_receiver {
 public:
  [[nodiscard]] static result<std::unique_ptr<snapshot_receiver>> open(std::string path,
                                                                       snapshot_options opts = {});
  ~snapshot_receiver();
  snapshot_receiver(const snapshot_receiver&) = delete;
  snapshot_receiver& operator=(const snapshot_receiver&) = delete;

  [[nodiscard]] status add(uint64_t offset, std::string_view chunk);
  [[nodiscard]] result<snapshot_info> commit(store& db);

 private:
  snapshot_receiver(std::string path, int fd, snapshot_options opts);

  std::string path_;
  int fd_;
  snapshot_loader loader_;
};

// Loads the snapshot at `path` into `db` (replacing its content and applied
// sequence) if the whole file checks out; otherwise `db` is unchanged and
// the error names the file and the offset of the damage.
[[nodiscard]] result<snapshot_info> load_snapshot_file(const std::string& path, store& db,
                                                       snapshot_options opts = {});

}  // namespace walrus::kv
