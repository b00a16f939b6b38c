// The replica's assembly. spawn_replica returns the replica front: a stable
// actor that supervises, rest_for_one, [applier, transport]. The transport
// (the in-process local link, or the TCP connector) starts after the applier
// and is restarted with it, so it always resumes at what the applier holds:
// the replica WAL's durable sequence + 1.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/applier.hpp"
#include "actors/local_link.hpp"
#include "actors/supervisor.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"

namespace walrus {

// Spawns the replica's transport for its current applier.
using transport_factory = std::function<caf::actor(caf::actor_system&, applier_actor)>;

// A transport_factory for a primary in the same actor system.
transport_factory local_transport(local_link_config cfg);

struct replica_config {
  std::string replica_id = "replica";
  size_t max_batch_bytes = 64 * 1024 * 1024;  // largest uncompressed batch accepted
  transport_factory transport;
  // Optional: lets the replica bootstrap from the primary's snapshot when
  // its position is no longer retained (TCP transport only).
  std::shared_ptr<snapshot_sink> snapshots;
  uint32_t max_restarts = 10;
  caf::timespan restart_period = std::chrono::seconds(10);
  backoff_config backoff;
  uint64_t seed = 0;
};

replica_actor spawn_replica(caf::actor_system& sys, replica_config cfg,
                            std::shared_ptr<state_machine> machine, std::shared_ptr<wal::log> log);

}  // namespace walrus
