// The walrus-kv server: a Redis-protocol (RESP2) key-value server whose
// primary replicates every write through walrus to its replicas.
// docs/operations.md describes the command line, the data folder and INFO.
//
// One process is one node:
//   primary  WAL (DIR/wal) -> store (replayed at start), the replication
//            primary + TCP listener, the writer thread, the RESP broker;
//   replica  WAL (DIR/wal) -> store (replayed at start), the replication
//            replica dialling the primary, the RESP broker (reads only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "codec/codec.hpp"
#include "wal/sync_policy.hpp"

namespace caf {
class actor_system_config;
}  // namespace caf

namespace walrus::kv::server {

enum class run_mode : uint8_t { help, primary, replica, demo };

struct options {
  run_mode mode = run_mode::help;
  std::string dir;
  std::string bind = "127.0.0.1";
  uint16_t port = 6379;       // 0: the OS picks one (printed on the ready line)
  uint16_t repl_port = 7379;  // primary only; 0 as above
  codec::codec_config codec{codec::codec_id::zstd, 1};
  wal::sync_policy sync = wal::sync_policy::group();
  std::optional<std::string> secret;
  std::string cluster_id = "walrus-kv";
  // Replica only.
  std::string primary_host;
  uint16_t primary_port = 0;
  std::string replica_id;  // empty: DIR/replica-id, created on first start
  // Limits.
  size_t max_clients = 10000;
  size_t max_request_bytes = 64 * 1024 * 1024;
  // Snapshots (DIR/snapshots): a new one every this many applied entries
  // (0: only on BGSAVE); the WAL before the newest one may then be dropped.
  uint64_t snapshot_entries = 1000000;
  uint64_t wal_segment_bytes = uint64_t{64} << 20;  // WAL segment size (>= 4 KiB)
  // Prometheus text at GET /metrics on bind:metrics_port (0: the OS picks);
  // no endpoint when unset.
  std::optional<uint16_t> metrics_port;
  // --config FILE: its [walrus-kv] section was applied under the command
  // line; its CAF sections configure the actor system (configure_actor_system).
  std::string config_file;
};

// The --help text.
std::string usage();

// Parses argv (argv[0] is the program) and the --config file. Errors are
// one line, ready for "walrus-kv: <message>"; those from the file name the
// file and the key.
[[nodiscard]] result<options> parse_options(int argc, char** argv);

// Applies the CAF sections of opts.config_file ([scheduler], [middleman],
// ...) to `cfg`; nothing without a config file.
[[nodiscard]] status configure_actor_system(caf::actor_system_config& cfg, const options& opts);

// Runs a primary or a replica until SIGTERM/SIGINT; the exit code.
int run_server(const options& opts);

// `walrus-kv demo`: a primary and two replicas as child processes.
int run_demo(const options& opts);

}  // namespace walrus::kv::server
