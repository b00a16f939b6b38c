// The typed interfaces of walrus actors. Data flows
//   WAL --wake--> tailer --entry_block--> batcher --batch--> transport ... applier
// and credit flows back
//   applier --ack--> transport ... batcher --demand--> tailer
// (docs/architecture.md draws the whole picture). Bodies live in actors/.
#pragma once

#include <string>

#include "caf/actor.hpp"
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"
#include "messages/type_ids.hpp"

namespace walrus {

// One per replica session on the primary. Reads the WAL from the session's
// position through a cursor and sends entry blocks to its batcher, never more
// bytes than the batcher asked for.
using tailer_actor = caf::typed_actor<
    // The WAL's commit hook: entries up to this sequence are durable.
    caf::reacts_to<wake_atom, uint64_t>,
    // Credit from the batcher: it takes this many more entry bytes.
    caf::reacts_to<demand_atom, uint64_t>,
    // Restart reading at this sequence (a nack, or a batcher restart).
    caf::reacts_to<rewind_atom, uint64_t>>;

// One per replica session on the primary. Seals entry blocks into compressed
// batches, keeps the in-flight window (bytes and batches not yet acked) and
// turns acks into demand for its tailer.
using batcher_actor = caf::typed_actor<caf::reacts_to<entry_block>, caf::reacts_to<ack_atom, ack>,
                                       caf::reacts_to<nack_atom, nack>,
                                       // Linger timer; the number is its generation.
                                       caf::reacts_to<linger_atom, uint64_t>>;

// Where sealed batches go: the primary side of a transport.
using batch_sink_actor = caf::typed_actor<caf::reacts_to<batch>>;

// Where an applier's progress goes: the replica side of a transport.
using ack_sink_actor =
    caf::typed_actor<caf::reacts_to<ack_atom, ack>, caf::reacts_to<nack_atom, nack>>;

// A transport carries batches one way and acks the other. The in-process
// link of the deterministic tests and the TCP brokers both implement it.
using transport_actor = batch_sink_actor::extend_with<ack_sink_actor>;

// One per replica. Verifies and applies batches, appends them to the
// replica's WAL, syncs by policy and acks.
using applier_actor =
    caf::typed_actor<caf::reacts_to<batch>, caf::replies_to<status_atom>::with<replica_status>>;

// One per primary. Keeps each replica's positions and lag, answers waits and
// feeds the WAL's retention.
using ack_tracker_actor = caf::typed_actor<
    // A replica session starts at this sequence / ends.
    caf::reacts_to<attach_atom, std::string, uint64_t>, caf::reacts_to<detach_atom, std::string>,
    // Progress of one replica.
    caf::reacts_to<ack_atom, std::string, ack>,
    // The primary's WAL became durable up to this sequence.
    caf::reacts_to<wake_atom, uint64_t>,
    // Answers the number of replicas that reached the request's level.
    caf::replies_to<wait_atom, wait_request>::with<uint32_t>,
    caf::replies_to<status_atom>::with<primary_status>>;

// A supervisor: restarts its children by strategy, answers their current
// handles (a restarted child has a new one) and its own status.
using supervisor_actor =
    caf::typed_actor<caf::replies_to<status_atom>::with<supervisor_status>,
                     caf::replies_to<child_atom, std::string>::with<caf::actor>,
                     // Backoff timer; the number is its generation.
                     caf::reacts_to<restart_atom, uint64_t>, caf::reacts_to<stop_atom>>;

// What a host application holds after spawn_primary / spawn_replica.
using primary_actor = caf::typed_actor<caf::replies_to<status_atom>::with<primary_status>,
                                       caf::replies_to<wait_atom, wait_request>::with<uint32_t>,
                                       caf::reacts_to<stop_atom>>;

using replica_actor =
    caf::typed_actor<caf::replies_to<status_atom>::with<replica_status>, caf::reacts_to<stop_atom>>;

}  // namespace walrus
