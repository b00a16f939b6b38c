// Retention slots on disk: the ack tracker's record of every replica it
// knows and the sequence through which that replica holds the WAL durably,
// kept in the primary's WAL folder (`replica-slots`), as PostgreSQL keeps
// replication slots. A tracker that starts (a restarted primary, or a new
// tracker after a crash) loads them, so its first retention round keeps
// what replicas that are not attached yet still need.
//
// The file is small text, replaced atomically (write a temporary file,
// fdatasync, rename, fsync the folder):
//
//   walrus-replica-slots 1
//   <id length>:<replica id> <durable sequence>     (one line per replica)
//   crc32c <8 hex digits of everything above>
//
// Positions in it are never newer than the tracker's: a stale file keeps
// more WAL, never less.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/status.hpp"
#include "wal/file_system.hpp"

namespace walrus {

using retention_slots = std::map<std::string, uint64_t>;  // replica id -> durable sequence

// The slots file of the WAL folder `dir`.
std::string retention_slots_path(const std::string& dir);

// The slots in `path`; empty when there is no file. errc::corruption naming
// the file and line when it does not parse or its checksum does not match.
[[nodiscard]] result<retention_slots> load_retention_slots(wal::file_system& fs,
                                                           const std::string& path);

// Replaces `path` with `slots`, durably.
[[nodiscard]] status save_retention_slots(wal::file_system& fs, const std::string& path,
                                          const retention_slots& slots);

}  // namespace walrus
