// The primary's ack tracker: each replica's received/durable/applied position
// and lag, waits like Redis WAIT or PostgreSQL's synchronous_commit, and the
// WAL's retention slots.
//
// Lag of a replica: entries = primary durable - replica applied; bytes = WAL
// bytes written since the replica's position; milliseconds = age of the
// oldest durable entry the replica has not applied. Ages and byte counts come
// from samples taken at each durable advance (wake), at most `sample_limit`
// kept, so they are exact to the granularity of those wake-ups.
//
// Retention: every `retention_interval` the tracker drops WAL segments below
// the oldest position a known replica still needs (its durable + 1), then
// applies the log's byte and age caps. A replica whose position fell below
// the first retained sequence is marked `lost`: it must bootstrap.
#pragma once

#include <chrono>
#include <memory>

#include "actors/durable_watch.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"
#include "wal/log.hpp"

namespace walrus {

struct ack_tracker_config {
  std::shared_ptr<wal::log> log;
  std::shared_ptr<durable_watch> watch;
  caf::timespan retention_interval = std::chrono::seconds(1);
  size_t sample_limit = 65536;
  // Keep the replicas and their positions in `replica-slots` in the WAL
  // folder (actors/retention_slots.hpp), so that a restarted primary's
  // retention keeps what detached replicas still need.
  bool persist_slots = true;
};

ack_tracker_actor spawn_ack_tracker(caf::actor_system& sys, ack_tracker_config cfg);

}  // namespace walrus
