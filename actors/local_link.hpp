// The in-process transport: the replica side of a session when primary and
// replica live in one actor system (the deterministic tests, the embedding
// example). It plays the part the TCP connector plays across processes: on
// start it asks its applier where to resume (durable + 1), attaches to the
// primary, then carries batches to the applier and acks and nacks back to
// the batcher. When it dies the primary ends the session; its supervisor
// starts a new one, which attaches again.
#pragma once

#include <functional>
#include <string>

#include "caf/actor_system.hpp"
#include "codec/codec.hpp"
#include "messages/interfaces.hpp"

namespace walrus {

struct local_link_config {
  std::string replica_id;
  primary_actor primary;
  // Fault injection for tests: a batch for which this answers true is lost.
  std::function<bool(const batch&)> drop;
  // The session's codec (what a handshake would have negotiated).
  codec::codec_id codec = codec::codec_id::none;
};

// (stall_atom, true) holds every batch, as a replica that stopped reading
// would; (stall_atom, false) delivers the held ones in order. What a stalled
// link holds is bounded by the primary's window, never by the link.
using local_link_actor = transport_actor::extend<caf::reacts_to<stall_atom, bool>>;

local_link_actor spawn_local_link(caf::actor_system& sys, local_link_config cfg,
                                  applier_actor applier);

}  // namespace walrus
