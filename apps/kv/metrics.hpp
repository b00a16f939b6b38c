// Prometheus metrics of a walrus-kv node (--metrics-port): the text
// exposition format 0.0.4 at GET /metrics, over HTTP/1.1 with one request per
// connection. docs/kv.md ("Metrics") lists every metric.
//
// render_metrics() turns one metrics_snapshot into the text; it is plain
// code, tested on its own. spawn_metrics_server() is the endpoint: a CAF
// broker on the middleman's I/O thread (beside the RESP broker) that gathers
// a snapshot from the replication actors, the RESP broker and the WAL for
// each scrape.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caf/fwd.hpp"
#include "messages/types.hpp"

namespace walrus::kv::server {

struct node_context;

struct component_restarts {
  std::string component;  // "tailer@R", "batcher@R", "applier", "transport"
  uint64_t restarts = 0;
};

// What one scrape reports. An optional is unset when its source did not
// answer in time; its metrics then have no sample.
struct metrics_snapshot {
  bool primary = true;  // the node's role
  std::string version;
  double uptime_seconds = 0;
  std::optional<uint64_t> connected_clients;
  std::optional<uint64_t> commands_processed;
  uint64_t wal_first_sequence = 0;
  uint64_t wal_last_sequence = 0;
  uint64_t wal_durable_sequence = 0;
  uint64_t wal_size_bytes = 0;
  std::optional<primary_status> primary_view;  // primary only
  std::optional<replica_status> replica_view;  // replica only
  std::vector<component_restarts> restarts;
};

// The exposition text: HELP and TYPE for every metric of the node's role,
// samples for what the snapshot holds.
std::string render_metrics(const metrics_snapshot& snapshot);

// Spawns the endpoint on node->opts.bind:port. It answers (caf::get_atom)
// with its port, or an error (then it quits) when it could not listen.
// `resp` is the RESP broker, asked for its client and command counts.
caf::actor spawn_metrics_server(caf::actor_system& sys, std::shared_ptr<node_context> node,
                                uint16_t port, caf::actor resp);

}  // namespace walrus::kv::server
