// The applier: one per replica. For each batch it
//   1. drops duplicates (at or below what it received) and answers a gap
//      with one nack naming the sequence it expects;
//   2. decompresses within the declared size, checks the CRC32C, parses the
//      entries, and collects fragments until a transaction is whole;
//   3. appends whole transactions to the replica's WAL (write-ahead), then
//      applies them to the host's state machine;
//   4. acks {received, durable, applied} to the transport it came from.
// The WAL's sync policy decides when entries are durable; durable advances
// reported by the WAL's commit hook produce further acks.
//
// A snapshot (snapshot_piece begin, chunks, end) goes to the snapshot sink;
// each chunk is acked with unchanged sequences (the primary's flow control),
// and at the end the sink installs it, the WAL restarts after its sequence,
// and the ack names that sequence at every level.
//
// On start it replays into the state machine what its WAL holds beyond the
// machine's applied sequence, so a restart between WAL append and apply
// neither loses nor repeats a transaction. Each sink (WAL, state machine)
// takes a transaction only past its own position: exactly once for each.
#pragma once

#include <memory>
#include <string>

#include "actors/snapshot.hpp"
#include "actors/state_machine.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"
#include "wal/log.hpp"

namespace walrus {

class durable_watch;

struct applier_config {
  std::string replica_id;
  std::shared_ptr<wal::log> log;
  std::shared_ptr<state_machine> machine;
  std::shared_ptr<durable_watch> watch;              // on `log`
  size_t max_batch_bytes = 64 * 1024 * 1024;         // largest uncompressed batch accepted
  size_t max_transaction_bytes = 256 * 1024 * 1024;  // bound of a fragmented transaction
  std::shared_ptr<snapshot_sink> snapshots;          // optional: bootstrap by snapshot
};

applier_actor spawn_applier(caf::actor_system& sys, applier_config cfg);

// Applies what `log` holds beyond machine.applied_sequence() (a host calls
// this at start-up to rebuild its state; the applier does it on start).
[[nodiscard]] status replay(wal::log& log, state_machine& machine);

}  // namespace walrus
