// The primary's TCP transport. The listener accepts replicas on a configured
// address (port 0 picks one); each connection gets its own broker, which
//   * runs the handshake of docs/protocol.md §3 (version, cluster, codec,
//     frame size, optional HMAC authentication),
//   * attaches to the primary front as the session's transport, so the
//     session's batcher sends it batches, which it writes as Batch frames,
//   * reads Ack, Nack and Heartbeat frames and hands acks and nacks to the
//     batcher (credit),
//   * sends heartbeats when idle and drops a replica silent for peer_timeout.
// Any input it cannot accept (garbage, a frame over the limit, an unknown
// frame, a frame at the wrong time, an ack beyond what was sent) gets an
// Error frame naming the cause and a closed connection; the listener and the
// other connections carry on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/snapshot.hpp"
#include "actors/wire.hpp"
#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "messages/interfaces.hpp"
#include "wal/log.hpp"

namespace walrus {

struct listener_config {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the OS picks one; the listener reports it
  wire_format::primary_handshake_config handshake;
  caf::timespan handshake_timeout = std::chrono::seconds(5);
  // Optional: replicas whose position is no longer retained bootstrap from
  // the newest snapshot (docs/protocol.md §7) instead of being refused.
  std::shared_ptr<snapshot_source> snapshots;
  uint32_t snapshot_chunk_bytes = 512 * 1024;
  uint32_t snapshot_window_chunks = 16;  // chunks sent and not yet acked
};

// Spawns the listener. It answers (caf::get_atom) with its port, or has quit
// with errc::io_error naming host and port when it could not listen.
caf::actor spawn_listener(caf::actor_system& sys, listener_config cfg, primary_actor primary,
                          std::shared_ptr<wal::log> log);

// Spawns a listener and waits for its port: the port, or why it failed.
[[nodiscard]] result<std::pair<caf::actor, uint16_t>> listen(caf::actor_system& sys,
                                                             listener_config cfg,
                                                             primary_actor primary,
                                                             std::shared_ptr<wal::log> log);

}  // namespace walrus
