// The replica's TCP transport. The connector dials the primary, says Hello
// with the first sequence its applier needs (durable + 1), completes the
// handshake, then carries Batch frames to the applier and the applier's acks
// and nacks back as frames. After any failure (refused connection, lost
// link, an Error frame, a silent primary) it tells the applier the link is
// down and dials again after an exponential backoff with jitter, resuming
// exactly after the replica's durable sequence: no gap, no duplicate applied.
#pragma once

#include <cstdint>
#include <string>

#include "actors/replica.hpp"
#include "actors/supervisor.hpp"
#include "actors/wire.hpp"
#include "caf/actor_system.hpp"

namespace walrus {

struct connector_config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  wire_format::replica_handshake_config handshake;
  backoff_config reconnect{std::chrono::milliseconds(100), 2.0, std::chrono::seconds(5), 0.2};
  uint64_t seed = 0;
};

caf::actor spawn_connector(caf::actor_system& sys, connector_config cfg, applier_actor applier);

// A transport_factory that dials a primary over TCP.
transport_factory network_transport(connector_config cfg);

}  // namespace walrus
