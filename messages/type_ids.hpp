// The CAF type-ID block and atoms of walrus. Registered once by
// walrus::add_message_types (messages/registry.hpp).
#pragma once

#include "caf/atom.hpp"
#include "caf/type_id.hpp"
#include "messages/types.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(walrus, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(walrus, (walrus::entry_block))
CAF_ADD_TYPE_ID(walrus, (walrus::batch))
CAF_ADD_TYPE_ID(walrus, (walrus::ack))
CAF_ADD_TYPE_ID(walrus, (walrus::nack))
CAF_ADD_TYPE_ID(walrus, (walrus::wait_request))
CAF_ADD_TYPE_ID(walrus, (walrus::state_transition))
CAF_ADD_TYPE_ID(walrus, (walrus::replica_info))
CAF_ADD_TYPE_ID(walrus, (walrus::primary_status))
CAF_ADD_TYPE_ID(walrus, (walrus::replica_status))
CAF_ADD_TYPE_ID(walrus, (walrus::child_status))
CAF_ADD_TYPE_ID(walrus, (walrus::supervisor_status))
CAF_ADD_TYPE_ID(walrus, (walrus::snapshot_piece))
CAF_ADD_TYPE_ID(walrus, (walrus::snapshot_progress))

// Flow of entries and credit.
CAF_ADD_ATOM(walrus, walrus, wake_atom, "wake")      // the WAL has new durable entries
CAF_ADD_ATOM(walrus, walrus, demand_atom, "demand")  // credit: room for N more bytes
CAF_ADD_ATOM(walrus, walrus, rewind_atom, "rewind")  // resend from a sequence
CAF_ADD_ATOM(walrus, walrus, linger_atom, "linger")  // batcher's linger timer
CAF_ADD_ATOM(walrus, walrus, ack_atom, "ack")
CAF_ADD_ATOM(walrus, walrus, nack_atom, "nack")
// Queries and control.
CAF_ADD_ATOM(walrus, walrus, status_atom, "status")
CAF_ADD_ATOM(walrus, walrus, wait_atom, "wait")
CAF_ADD_ATOM(walrus, walrus, attach_atom, "attach")    // a replica session starts
CAF_ADD_ATOM(walrus, walrus, detach_atom, "detach")    // a replica session ends
CAF_ADD_ATOM(walrus, walrus, child_atom, "child")      // look up a supervised child
CAF_ADD_ATOM(walrus, walrus, restart_atom, "restart")  // supervisor's backoff timer
CAF_ADD_ATOM(walrus, walrus, stop_atom, "stop")
CAF_ADD_ATOM(walrus, walrus, connected_atom, "connected")  // a transport went up or down
CAF_ADD_ATOM(walrus, walrus, stall_atom, "stall")          // tests: hold a link's batches
CAF_END_TYPE_ID_BLOCK(walrus)
