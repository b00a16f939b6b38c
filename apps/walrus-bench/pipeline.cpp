// walrus-bench pipeline: primary -> replica throughput and latency inside one
// process (no network): real actor system, real WAL files, the same actors
// as production with the in-process transport.
#include "apps/walrus-bench/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/registry.hpp"
#include "wal/log.hpp"

namespace walrus::bench {
namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Counts what it applies; optionally stamps apply times for latency.
class counting_machine : public state_machine {
 public:
  explicit counting_machine(std::vector<clock_type::time_point>* stamps) : stamps_(stamps) {}

  status apply(const transaction& tx) override {
    if (stamps_ != nullptr) {
      auto now = clock_type::now();
      for (uint64_t s = tx.first_sequence; s <= tx.last_sequence(); ++s)
        if (s < stamps_->size()) (*stamps_)[s] = now;
    }
    applied_.store(tx.last_sequence(), std::memory_order_release);
    return status{};
  }
  uint64_t applied_sequence() const override { return applied_.load(std::memory_order_acquire); }

 private:
  std::vector<clock_type::time_point>* stamps_;
  std::atomic<uint64_t> applied_{0};
};

// WAL-like payloads: a key and a value with some repetition, like a kv write.
std::vector<std::string> make_payloads(size_t entry_bytes, size_t count) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    std::string p = "SET user:" + std::to_string(100000 + i * 7919 % 900000) + " {\"name\":\"n" +
                    std::to_string(i) + "\",\"score\":" + std::to_string(i * 31 % 1000) + "}";
    while (p.size() < entry_bytes) p += " pad" + std::to_string(p.size() % 97);
    p.resize(entry_bytes);
    out.push_back(std::move(p));
  }
  return out;
}

struct cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<wal::log> primary_log;
  primary_actor primary;
  std::vector<std::shared_ptr<counting_machine>> machines;
  std::vector<replica_actor> replicas;

  cluster(const pipeline_options& opt, const fs::path& dir,
          std::vector<clock_type::time_point>* stamps) {
    configure_bench_system(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    primary_log = open_bench_log((dir / "primary").string());
    primary_config pc;
    pc.session.codec = opt.codec;
    primary = spawn_primary(*sys, pc, primary_log);
    for (size_t i = 0; i < opt.replicas; ++i) {
      auto id = "replica-" + std::to_string(i + 1);
      replica_config rc;
      rc.replica_id = id;
      rc.transport = local_transport(local_link_config{id, primary, nullptr, opt.codec.id});
      machines.push_back(std::make_shared<counting_machine>(i == 0 ? stamps : nullptr));
      replicas.push_back(spawn_replica(*sys, rc, machines.back(),
                                       open_bench_log((dir / id).string(), 256ull << 20)));
    }
  }

  uint64_t slowest_applied() const {
    uint64_t min = UINT64_MAX;
    for (auto& m : machines) min = std::min(min, m->applied_sequence());
    return min;
  }

  ~cluster() {
    caf::scoped_actor self{*sys};
    for (auto& r : replicas) self->send(r, stop_atom_v);
    self->send(primary, stop_atom_v);
  }
};

}  // namespace

void configure_bench_system(caf::actor_system_config& cfg) {
  add_message_types(cfg);
  // As walrus-kv and docs/embedding.md: CAF 0.17's default of at least 4
  // workers halves 100 B throughput on 2 cores; work stealing costs the TCP
  // rows up to half (three replicas, docs/benchmarks.md).
  use_recommended_scheduler(cfg);
  if (auto t = std::getenv("WALRUS_CAF_THREADS"))
    cfg.set("scheduler.max-threads", static_cast<size_t>(std::atoi(t)));
  if (auto p = std::getenv("WALRUS_CAF_POLICY"))
    cfg.set("scheduler.policy", caf::atom_from_string(p));
  // One message per turn: else a connection broker, which runs on the
  // multiplexer thread, takes the batcher's whole window (8 MiB) into its
  // write buffer before the multiplexer gets to send any of it (TCP 100 B
  // entries: 0.9 -> 2 M/s; docs/benchmarks.md).
  size_t max_throughput = 1;
  if (auto n = std::getenv("WALRUS_CAF_MAX_THROUGHPUT"))
    max_throughput = static_cast<size_t>(std::atoll(n));
  cfg.set("scheduler.max-throughput", max_throughput);
  if (auto us = std::getenv("WALRUS_CAF_RELAXED_SLEEP_US"))
    cfg.set("work-stealing.relaxed-sleep-duration",
            caf::timespan{std::chrono::microseconds(std::atoll(us))});
}

std::shared_ptr<wal::log> open_bench_log(const std::string& dir, uint64_t replica_cap_bytes) {
  wal::options opts;
  opts.dir = dir;
  opts.sync = wal::sync_policy::none();
  // A replica's old segments are deleted before the kernel writes them back,
  // as in the WAL benchmark: the figures measure walrus more than this disk's
  // writeback. (The primary keeps everything: a slow replica may need it.)
  opts.max_retained_bytes = replica_cap_bytes;
  auto log = wal::log::open(opts);
  if (!log) {
    std::fprintf(stderr, "walrus-bench: cannot open %s: %s\n", dir.c_str(),
                 log.error().to_string().c_str());
    std::exit(2);
  }
  return std::shared_ptr<wal::log>(std::move(*log));
}

double process_cpu_seconds(int pid) {
  if (pid == 0) {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
  }
  // /proc/PID/stat: utime and stime are fields 14 and 15, after "(comm)".
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  double utime = 0;
  double stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

throughput_result run_throughput(const pipeline_options& opt) {
  auto dir = fs::path(opt.dir) / ("pipeline-" + std::to_string(::getpid()));
  throughput_result out;
  {
    cluster c(opt, dir, nullptr);
    auto payloads = make_payloads(opt.entry_bytes, 1024);
    std::vector<std::string_view> tx;
    auto total_entries = std::max<uint64_t>(opt.bytes / opt.entry_bytes, opt.tx_entries);
    auto start = clock_type::now();
    auto cpu_start = process_cpu_seconds();
    auto last_report = start;
    uint64_t written = 0;
    while (written < total_entries) {
      tx.clear();
      for (size_t i = 0; i < opt.tx_entries; ++i)
        tx.push_back(payloads[(written + i) % payloads.size()]);
      auto range = c.primary_log->append(tx);
      if (!range) {
        std::fprintf(stderr, "append failed: %s\n", range.error().to_string().c_str());
        std::exit(2);
      }
      written += tx.size();
      if (auto now = clock_type::now(); now - last_report > std::chrono::seconds(1)) {
        last_report = now;
        std::fprintf(stderr, "  ... %lu of %lu entries written, slowest replica at %lu\n", written,
                     total_entries, c.slowest_applied());
      }
    }
    while (c.slowest_applied() < written)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    auto elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    out.cpu_seconds = process_cpu_seconds() - cpu_start;
    out.entries = written;
    out.seconds = elapsed;
    out.entries_per_second = static_cast<double>(written) / elapsed;
    out.megabytes_per_second =
        static_cast<double>(written) * static_cast<double>(opt.entry_bytes) / elapsed / 1e6;
  }
  fs::remove_all(dir);
  return out;
}

latency_result run_latency(const pipeline_options& opt, uint64_t rate, double seconds) {
  auto dir = fs::path(opt.dir) / ("latency-" + std::to_string(::getpid()));
  latency_result out;
  auto count = static_cast<uint64_t>(static_cast<double>(rate) * seconds);
  std::vector<clock_type::time_point> appended(count + 2), applied(count + 2);
  {
    cluster c(opt, dir, &applied);
    auto payloads = make_payloads(opt.entry_bytes, 1024);
    auto start = clock_type::now();
    auto interval = std::chrono::duration<double>(1.0 / static_cast<double>(rate));
    // Appends whatever is due, then sleeps a little: paced without burning
    // a core in a spin loop (the machine has two).
    for (uint64_t i = 0; i < count;) {
      auto due = start + std::chrono::duration_cast<clock_type::duration>(interval * i);
      if (clock_type::now() < due) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        continue;
      }
      auto range = c.primary_log->append(payloads[i % payloads.size()]);
      if (!range) std::exit(2);
      appended[range->last] = clock_type::now();
      ++i;
    }
    while (c.slowest_applied() < count) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  std::vector<double> us;
  us.reserve(count);
  for (uint64_t s = 1; s <= count; ++s)
    us.push_back(std::chrono::duration<double, std::micro>(applied[s] - appended[s]).count());
  std::sort(us.begin(), us.end());
  out.samples = us.size();
  out.p50_us = us[us.size() / 2];
  out.p99_us = us[us.size() * 99 / 100];
  out.max_us = us.back();
  fs::remove_all(dir);
  return out;
}

}  // namespace walrus::bench
