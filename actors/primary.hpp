// The primary's assembly. spawn_primary returns the primary front: a stable
// actor that supervises the ack tracker (one_for_one) and one session per
// attached replica. A session is a rest_for_one supervisor of [tailer,
// batcher]; a tailer restart restarts its batcher, a batcher restart leaves
// the tailer. Every restart resumes at the replica's last acknowledged
// position, which the front remembers across restarts of any part.
//
// The front takes the log's commit hook: a host that needs its own hook
// wraps durable_watch::notify.
#pragma once

#include <memory>
#include <string>

#include "actors/batcher.hpp"
#include "actors/supervisor.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"
#include "wal/log.hpp"

namespace walrus {

struct primary_config {
  std::string primary_id = "primary";
  // Defaults for every replica session (replica_id and start are per session).
  batcher_config session;
  size_t max_block_bytes = 256 * 1024;  // tailer blocks; one block often is one batch
  caf::timespan retention_interval = std::chrono::seconds(1);
  // Restart limits of the front (ack tracker) and of each session.
  uint32_t max_restarts = 10;
  caf::timespan restart_period = std::chrono::seconds(10);
  backoff_config backoff;
  uint64_t seed = 0;
};

primary_actor spawn_primary(caf::actor_system& sys, primary_config cfg,
                            std::shared_ptr<wal::log> log);

}  // namespace walrus
