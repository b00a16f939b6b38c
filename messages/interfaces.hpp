// The typed interfaces of walrus actors. Data flows
//   WAL --wake--> tailer --entry_block--> batcher --batch--> transport ... applier
// and credit flows back
//   applier --ack--> transport ... batcher --demand--> tailer
// (docs/architecture.md draws the whole picture). Bodies live in actors/.
#pragma once

#include <string>

#include "caf/actor.hpp"
#include "caf/atom.hpp"
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
using batcher_actor = caf::typed_actor<
    caf::reacts_to<entry_block>, caf::reacts_to<ack_atom, ack>, caf::reacts_to<nack_atom, nack>,
    // Timers, by generation: linger, and the resend
    // timeout (no ack progress).
    caf::reacts_to<linger_atom, uint64_t>, caf::reacts_to<caf::timeout_atom, uint64_t>>;

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
using applier_actor = caf::typed_actor<caf::reacts_to<batch>, caf::reacts_to<snapshot_piece>,
                                       caf::replies_to<status_atom>::with<replica_status>,
                                       // From the transport: the link to the primary is up (true)
                                       // or down, and the newest sequence the primary announced.
                                       caf::reacts_to<connected_atom, bool, uint64_t>,
                                       // The link is down, and why (shown as the last error).
                                       caf::reacts_to<connected_atom, bool, uint64_t, std::string>,
                                       // The replica's own WAL became durable up to this sequence.
                                       caf::reacts_to<wake_atom, uint64_t>>;

// One per primary. Keeps each replica's positions and lag, answers waits and
// holds the WAL's retention slots.
using ack_tracker_actor = caf::typed_actor<
    // A replica session starts at this sequence / ends.
    caf::reacts_to<attach_atom, std::string, uint64_t>, caf::reacts_to<detach_atom, std::string>,
    // Progress of one replica, with the bytes its session has in flight and
    // the batches, entry bytes and wire bytes sealed since the last report.
    caf::reacts_to<ack_atom, std::string, ack, uint64_t, uint64_t, uint64_t, uint64_t>,
    // The primary's WAL became durable up to this sequence.
    caf::reacts_to<wake_atom, uint64_t>,
    // Answers the number of replicas that reached the request's level, or
    // errc::timeout saying how many did.
    caf::replies_to<wait_atom, wait_request>::with<uint32_t>,
    caf::replies_to<status_atom>::with<primary_status>,
    // Timers: a wait's deadline (by id) and the retention round.
    caf::reacts_to<caf::timeout_atom, uint64_t>, caf::reacts_to<caf::tick_atom>>;

// A supervisor: restarts its children by strategy, answers their current
// handles (a restarted child has a new one) and its own status.
using supervisor_actor =
    caf::typed_actor<caf::replies_to<status_atom>::with<supervisor_status>,
                     caf::replies_to<child_atom, std::string>::with<caf::actor>,
                     // Backoff timer; the number is its generation.
                     caf::reacts_to<restart_atom, uint64_t>, caf::reacts_to<stop_atom>>;

// What a host application holds after spawn_primary. Also the stable
// address of a primary for its own parts: links attach through it, batchers
// report acks through it (it routes them to the current ack tracker and
// remembers each replica's resume point across restarts).
using primary_actor = caf::typed_actor<
    caf::replies_to<status_atom>::with<primary_status>,
    caf::replies_to<wait_atom, wait_request>::with<uint32_t>,
    // A replica's transport offers itself for a session. Answers the primary's
    // durable sequence, or an error (e.g. errc::not_retained) after which the
    // transport gives up.
    caf::replies_to<attach_atom, session_request, transport_actor>::with<uint64_t>,
    // From a session's batcher: an ack, with the bytes still in flight and
    // the batches, entry bytes and wire bytes sealed since its last report.
    caf::reacts_to<ack_atom, std::string, ack, uint64_t, uint64_t, uint64_t, uint64_t>,
    // The sequence a replica's session resumes from after a restart.
    caf::replies_to<caf::get_atom, std::string>::with<uint64_t>,
    // The current handle of a part: "ack_tracker", or "tailer@R" / "batcher@R"
    // for replica R's session, "session@R" for its supervisor (introspection,
    // restart counts and fault tests).
    caf::replies_to<child_atom, std::string>::with<caf::actor>,
    caf::reacts_to<restart_atom, uint64_t>, caf::reacts_to<stop_atom>>;

using replica_actor =
    caf::typed_actor<caf::replies_to<status_atom>::with<replica_status>,
                     // The current handle of a part: "applier" or "transport".
                     caf::replies_to<child_atom, std::string>::with<caf::actor>,
                     caf::reacts_to<restart_atom, uint64_t>, caf::reacts_to<stop_atom>>;

}  // namespace walrus
