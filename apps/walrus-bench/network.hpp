// The TCP benchmarks of walrus-bench (docs/benchmarks.md): a primary in this
// process, replicas in child processes (this program, `replica-node` mode),
// on loopback.
#pragma once

#include <cstdint>
#include <string>

#include "apps/walrus-bench/pipeline.hpp"

namespace walrus::bench {

// Streams entries to `opt.replicas` replica processes over loopback TCP and
// waits until every one has applied all of them (as the primary's ack
// tracker reports).
throughput_result run_network(const pipeline_options& opt, const std::string& self_path);

// MB/s of a plain socket copy over loopback in this process (the ceiling).
double loopback_bandwidth(uint64_t bytes);

// MB/s of payload through the least work that shipping a WAL over TCP takes,
// with no actors and no protocol: one thread frames transactions of
// opt.tx_entries records (opt.entry_bytes each, the same payloads as the
// throughput rows) with wal::encode_record, appends each to a file and
// send()s it; another thread recv()s, checks every record with
// wal::decode_record and appends them to a file of its own. Both files in
// opt.dir, removed afterwards. What replication of opt.bytes costs at the
// least on this machine: both WALs' writes, both CRC passes, the socket.
double minimal_pipeline_bandwidth(const pipeline_options& opt);

// Primary RSS growth (bytes) while one replica is stopped (SIGSTOP) and the
// primary writes at full speed for `seconds`; then SIGCONT and the time the
// replica needs to catch up.
struct stall_result {
  uint64_t rss_before = 0;
  uint64_t rss_peak = 0;
  uint64_t entries_written = 0;
  double catch_up_seconds = 0;
};
stall_result run_stall(const pipeline_options& opt, const std::string& self_path, double seconds);

// Catch-up of a replica `entries` behind: the primary appends `entries`
// (opt.entry_bytes each) with no replica attached, keeping its whole WAL,
// then starts one replica process and times it from its start until it has
// applied everything. Progress goes to stderr every second.
struct catch_up_result {
  uint64_t entries = 0;
  double write_seconds = 0;   // appending the backlog on the primary
  double attach_seconds = 0;  // replica process start -> the primary knows it
  double seconds = 0;         // replica process start -> everything applied
  double entries_per_second = 0;
  double megabytes_per_second = 0;
};
catch_up_result run_catch_up(const pipeline_options& opt, const std::string& self_path,
                             uint64_t entries);

// Append -> applied-ack latency over TCP to one replica process: single-entry
// transactions at `rate` per second for `seconds`; each append is followed by
// a wait (ack level applied, 1 replica) whose answer time is the latency.
latency_result run_network_latency(const pipeline_options& opt, const std::string& self_path,
                                   uint64_t rate, double seconds);

// The child side: a replica dialling 127.0.0.1:port until killed.
int replica_node(int argc, char** argv);

}  // namespace walrus::bench
