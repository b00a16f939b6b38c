// walrus-bench: benchmarks that need the whole system (docs/benchmarks.md).
//
//   walrus-bench pipeline [--quick] [--dir DIR]
//     in-process primary -> replica throughput for 100 B, 1 KiB and 16 KiB
//     entries, codecs none/snappy/zstd, 1 and 3 replicas; then append ->
//     applied latency at fixed rates.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "apps/walrus-bench/network.hpp"
#include "apps/walrus-bench/pipeline.hpp"
#include "base/allocator.hpp"

#include <unistd.h>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: walrus-bench pipeline [--quick] [--dir DIR]\n"
               "       walrus-bench network [--quick] [--dir DIR]\n");
  return 2;
}

// --quick and --dir DIR, common to every benchmark.
bool parse_options(int argc, char** argv, walrus::bench::pipeline_options& base, bool& quick) {
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      base.dir = argv[++i];
    } else {
      std::fprintf(stderr, "walrus-bench: unknown option '%s'\n", argv[i]);
      return false;
    }
  }
  return true;
}

// WALRUS_BENCH_ROWS="16384/none/1,100/zstd/3" runs only those rows (profiling);
// latency rows are named RATE/latency/1, e.g. "100000/latency/1".
bool selected(size_t entry, const char* codec, size_t replicas) {
  const char* rows = std::getenv("WALRUS_BENCH_ROWS");
  if (rows == nullptr || *rows == '\0') return true;
  auto row = std::to_string(entry) + "/" + codec + "/" + std::to_string(replicas);
  std::string all = std::string{","} + rows + ",";
  return all.find("," + row + ",") != std::string::npos;
}

// WALRUS_BENCH_MIB=N streams N MiB per throughput row instead (profiling).
uint64_t row_bytes(uint64_t fallback) {
  const char* mib = std::getenv("WALRUS_BENCH_MIB");
  if (mib == nullptr || *mib == '\0') return fallback;
  return std::strtoull(mib, nullptr, 10) << 20;
}

int network(int argc, char** argv, const std::string& self_path) {
  walrus::bench::pipeline_options base;
  bool quick = false;
  if (!parse_options(argc, argv, base, quick)) return usage();
  base.bytes = row_bytes(quick ? 32ull << 20 : 256ull << 20);
  auto bandwidth = walrus::bench::loopback_bandwidth(quick ? 1ull << 30 : 4ull << 30);
  std::printf("loopback TCP socket copy: %.0f MB/s\n", bandwidth);
  // What the same entries cost at the least (both WALs, both CRC passes,
  // the socket; no actors, no protocol): the ceiling of this machine.
  std::map<size_t, double> minimal;
  for (size_t entry : {size_t{100}, size_t{1024}, size_t{16384}}) {
    bool any = false;
    for (const char* codec : {"none", "snappy", "zstd"})
      for (size_t replicas : {size_t{1}, size_t{3}}) any = any || selected(entry, codec, replicas);
    if (!any) continue;
    auto opt = base;
    opt.entry_bytes = entry;
    opt.tx_entries = entry >= 16384 ? 4 : 100;
    minimal[entry] = walrus::bench::minimal_pipeline_bandwidth(opt);
    std::printf("minimal two-WAL pipeline, no actors, %zu B entries: %.0f MB/s (%.0f%% of tcp)\n",
                entry, minimal[entry], 100.0 * minimal[entry] / bandwidth);
  }
  std::printf("\n%-8s %-7s %-8s %14s %10s %10s %8s %8s %10s\n", "entry", "codec", "replicas",
              "entries/s", "MB/s", "seconds", "of tcp", "of min", "cpu s/GB");
  for (size_t entry : {size_t{100}, size_t{1024}, size_t{16384}}) {
    for (const char* codec : {"none", "snappy", "zstd"}) {
      for (size_t replicas : {size_t{1}, size_t{3}}) {
        if (!selected(entry, codec, replicas)) continue;
        auto opt = base;
        opt.entry_bytes = entry;
        opt.tx_entries = entry >= 16384 ? 4 : 100;
        opt.replicas = replicas;
        opt.codec = *walrus::codec::parse_codec_config(codec);
        auto r = walrus::bench::run_network(opt, self_path);
        std::printf("%-8zu %-7s %-8zu %14.0f %10.1f %10.2f %7.0f%% %7.0f%% %10.2f\n", entry, codec,
                    replicas, r.entries_per_second, r.megabytes_per_second, r.seconds,
                    100.0 * r.megabytes_per_second / bandwidth,
                    100.0 * r.megabytes_per_second / minimal[entry], r.cpu_seconds_per_gb(entry));
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n%-8s %-7s %-10s %10s %10s %10s %9s\n", "entry", "codec", "rate/s", "p50 us",
              "p99 us", "max us", "samples");
  // WALRUS_BENCH_ROWS also names the rows below: RATE/latency/1, 1024/stall/1
  // and 100/catch-up/1.
  for (uint64_t rate : {uint64_t{1000}, uint64_t{10000}, uint64_t{50000}}) {
    if (!selected(rate, "latency", 1)) continue;
    auto lopt = base;
    auto r = walrus::bench::run_network_latency(lopt, self_path, rate, quick ? 2.0 : 5.0);
    std::printf("%-8zu %-7s %-10lu %10.1f %10.1f %10.1f %9lu\n", lopt.entry_bytes, "none", rate,
                r.p50_us, r.p99_us, r.max_us, r.samples);
    std::fflush(stdout);
  }
  if (selected(1024, "stall", 1)) {
    auto opt = base;
    opt.entry_bytes = 1024;
    auto seconds = quick ? 5.0 : 30.0;
    auto s = walrus::bench::run_stall(opt, self_path, seconds);
    std::printf(
        "\nstalled replica (SIGSTOP) for %.0f s under full write load: %lu entries "
        "written, primary RSS %.1f MiB before, %.1f MiB peak (+%.1f MiB); caught up in "
        "%.2f s after SIGCONT\n",
        seconds, s.entries_written, s.rss_before / 1048576.0, s.rss_peak / 1048576.0,
        (static_cast<double>(s.rss_peak) - static_cast<double>(s.rss_before)) / 1048576.0,
        s.catch_up_seconds);
    std::fflush(stdout);
  }
  if (!selected(100, "catch-up", 1)) return 0;
  auto copt = base;  // 100 B entries, codec none
  auto behind = quick ? 500000ull : 5000000ull;
  auto c = walrus::bench::run_catch_up(copt, self_path, behind);
  std::printf(
      "\ncatch-up of a replica %llu entries (%zu B) behind, codec %s: %.0f entries/s, %.1f MB/s "
      "(%.2f s from its process start, attached after %.2f s; backlog appended in %.2f s)\n",
      static_cast<unsigned long long>(c.entries), copt.entry_bytes,
      std::string(walrus::codec::to_string(copt.codec.id)).c_str(), c.entries_per_second,
      c.megabytes_per_second, c.seconds, c.attach_seconds, c.write_seconds);
  return 0;
}

int pipeline(int argc, char** argv) {
  walrus::bench::pipeline_options base;
  bool quick = false;
  if (!parse_options(argc, argv, base, quick)) return usage();
  base.bytes = row_bytes(quick ? 16ull << 20 : 256ull << 20);
  std::printf("%-8s %-7s %-8s %14s %10s %10s %10s\n", "entry", "codec", "replicas", "entries/s",
              "MB/s", "seconds", "cpu s/GB");
  for (size_t entry : {size_t{100}, size_t{1024}, size_t{16384}}) {
    for (const char* codec : {"none", "snappy", "zstd"}) {
      for (size_t replicas : {size_t{1}, size_t{3}}) {
        if (!selected(entry, codec, replicas)) continue;
        auto opt = base;
        opt.entry_bytes = entry;
        opt.tx_entries = entry >= 16384 ? 4 : 100;
        opt.replicas = replicas;
        opt.codec = *walrus::codec::parse_codec_config(codec);
        auto r = walrus::bench::run_throughput(opt);
        std::printf("%-8zu %-7s %-8zu %14.0f %10.1f %10.2f %10.2f\n", entry, codec, replicas,
                    r.entries_per_second, r.megabytes_per_second, r.seconds,
                    r.cpu_seconds_per_gb(entry));
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n%-8s %-7s %-10s %10s %10s %10s %9s\n", "entry", "codec", "rate/s", "p50 us",
              "p99 us", "max us", "samples");
  for (uint64_t rate : {uint64_t{10000}, uint64_t{100000}}) {
    if (!selected(rate, "latency", 1)) continue;
    auto opt = base;
    auto r = walrus::bench::run_latency(opt, rate, quick ? 1.0 : 5.0);
    std::printf("%-8zu %-7s %-10lu %10.1f %10.1f %10.1f %9lu\n", opt.entry_bytes, "none", rate,
                r.p50_us, r.p99_us, r.max_us, r.samples);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  walrus::tune_allocator();
  if (argc < 2) return usage();
  if (std::strcmp(argv[1], "pipeline") == 0) return pipeline(argc - 2, argv + 2);
  if (std::strcmp(argv[1], "network") == 0) return network(argc - 2, argv + 2, argv[0]);
  if (std::strcmp(argv[1], "replica-node") == 0)
    return walrus::bench::replica_node(argc - 2, argv + 2);
  return usage();
}
