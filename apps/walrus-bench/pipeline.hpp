// The in-process pipeline benchmark of walrus-bench (docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <string>

#include <memory>

#include "caf/fwd.hpp"
#include "codec/codec.hpp"
#include "wal/log.hpp"

namespace walrus::bench {

struct pipeline_options {
  std::string dir = "/tmp";  // logs go to a fresh folder below, removed afterwards
  size_t entry_bytes = 100;
  size_t tx_entries = 100;        // entries per append (one transaction)
  uint64_t bytes = 512ull << 20;  // payload bytes to stream in a throughput run
  size_t replicas = 1;
  codec::codec_config codec;
};

struct throughput_result {
  uint64_t entries = 0;
  double seconds = 0;
  double entries_per_second = 0;
  double megabytes_per_second = 0;
  // CPU time (user + system) of every process involved over the run: on a
  // busy machine the rate moves with the neighbours, the cost per byte less.
  double cpu_seconds = 0;
  double cpu_seconds_per_gb(size_t entry_bytes) const {
    return entries == 0 ? 0 : cpu_seconds * 1e9 / (static_cast<double>(entries) * entry_bytes);
  }
};

// User + system CPU seconds of process `pid` so far (0: this process).
double process_cpu_seconds(int pid = 0);

struct latency_result {
  uint64_t samples = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

// Registers walrus's messages and sets the recommended scheduler (one
// worker per core, sharing); experiments: WALRUS_CAF_THREADS=N,
// WALRUS_CAF_POLICY=stealing, WALRUS_CAF_RELAXED_SLEEP_US=N.
void configure_bench_system(caf::actor_system_config& cfg);

// A log in `dir` with sync `none`, keeping at most `replica_cap_bytes` (0:
// everything); exits with a message when it cannot open.
std::shared_ptr<wal::log> open_bench_log(const std::string& dir, uint64_t replica_cap_bytes = 0);

// Streams `bytes` of entries and waits until every replica applied them.
throughput_result run_throughput(const pipeline_options& opt);

// Appends single-entry transactions at `rate` per second for `seconds`;
// latency is append returned -> applied on the (first) replica.
latency_result run_latency(const pipeline_options& opt, uint64_t rate, double seconds);

}  // namespace walrus::bench
