// The tailer: one per replica session on the primary. It reads the WAL
// through a cursor and sends entry blocks to whoever asked for them (its
// batcher), never more than the credit it was granted. It starts reading at
// the first `rewind` and follows the log: when it runs dry it re-arms its
// durable_watch subscription and waits for a wake-up (no polling).
//
// Blocks end at transaction boundaries unless one transaction alone is
// larger than max_block_bytes; a block may overshoot the credit by less than
// one transaction (at most max_block_bytes), which keeps the window bounded.
//
// Every rewind is answered first by a marker: an empty block with caught_up
// false and last_sequence = the number of rewinds this downstream sent (1 for
// its first). Blocks after the marker are read from the rewind's position;
// blocks before it are stale, whatever sequence they start at.
#pragma once

#include <memory>
#include <string>

#include "actors/durable_watch.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"
#include "wal/log.hpp"

namespace walrus {

struct tailer_config {
  std::string replica_id;
  std::shared_ptr<wal::log> log;
  std::shared_ptr<durable_watch> watch;
  size_t max_block_bytes = 64 * 1024;
};

tailer_actor spawn_tailer(caf::actor_system& sys, tailer_config cfg);

}  // namespace walrus
