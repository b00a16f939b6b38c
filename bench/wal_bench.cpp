// WAL micro-benchmarks (Google Benchmark): append throughput per sync policy
// and record size, cursor read throughput, CRC32C throughput.
//
//   cmake -S . -B build-wal-bench -G Ninja -DWALRUS_BENCH=ON -DCMAKE_BUILD_TYPE=Release
//   ninja -C build-wal-bench walrus_bench_wal && build-wal-bench/bench/walrus_bench_wal
//
// Logs live in a fresh directory under $WALRUS_BENCH_DIR (default /tmp),
// removed afterwards. Appends keep at most ~128 MiB on disk through the byte
// cap, so dirty pages of dropped segments never reach the disk and `none`
// measures the log, not the device.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/crc32c.hpp"
#include "wal/log.hpp"

using namespace walrus;

namespace {

class bench_dir {
 public:
  bench_dir() {
    const char* root = std::getenv("WALRUS_BENCH_DIR");
    std::string pattern = std::string{root != nullptr ? root : "/tmp"} + "/walrus-wal-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~bench_dir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<wal::log> open_log(const std::string& dir, const std::string& policy) {
  wal::options opts;
  opts.dir = dir;
  opts.sync = *wal::sync_policy::parse(policy);
  opts.max_retained_bytes = uint64_t{128} << 20;
  auto opened = wal::log::open(opts);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().to_string().c_str());
    std::abort();
  }
  return std::move(*opened);
}

// One log shared by all threads of a benchmark run.
struct shared_log {
  std::unique_ptr<bench_dir> dir;
  std::unique_ptr<wal::log> log;
};
shared_log shared;

// Args: sync policy index, record bytes, records per append.
const char* const policies[] = {"none", "group", "always", "interval:10"};

void BM_append(benchmark::State& state) {
  const std::string policy = policies[state.range(0)];
  const size_t record_bytes = static_cast<size_t>(state.range(1));
  const size_t batch = static_cast<size_t>(state.range(2));
  if (state.thread_index() == 0) {
    shared.dir = std::make_unique<bench_dir>();
    shared.log = open_log(shared.dir->path(), policy);
  }
  std::string payload(record_bytes, 'w');
  std::vector<std::string_view> txn(batch, payload);
  for (auto _ : state) {
    auto written = shared.log->append(txn);
    if (!written) {
      state.SkipWithError(written.error().to_string().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record_bytes));
  if (state.thread_index() == 0) {
    auto stats = shared.log->stats();
    state.counters["syncs"] = static_cast<double>(stats.syncs);
    state.counters["appends_per_sync"] =
        stats.syncs == 0 ? 0.0
                         : static_cast<double>(stats.appends) / static_cast<double>(stats.syncs);
    state.SetLabel(policy);
    shared.log.reset();
    shared.dir.reset();
  }
}

void append_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"policy", "bytes", "batch"});
  for (int64_t policy : {0, 1, 2, 3}) {
    b->Args({policy, 100, 1000});
    b->Args({policy, 1024, 1});
    b->Args({policy, 16384, 1});
  }
}

BENCHMARK(BM_append)->Apply(append_args)->UseRealTime();
// Group commit pays off with concurrent appenders.
BENCHMARK(BM_append)
    ->ArgNames({"policy", "bytes", "batch"})
    ->Args({1, 1024, 1})
    ->Args({2, 1024, 1})
    ->Threads(8)
    ->UseRealTime();

// Reads a log of `total_bytes` of payload through a cursor, from the start.
void BM_cursor_read(benchmark::State& state) {
  const size_t record_bytes = static_cast<size_t>(state.range(0));
  const size_t total_bytes = size_t{256} << 20;
  bench_dir dir;
  wal::options opts;
  opts.dir = dir.path();
  opts.sync = wal::sync_policy::none();
  auto opened = wal::log::open(opts);
  if (!opened) std::abort();
  auto& log = *opened;
  std::string payload(record_bytes, 'r');
  std::vector<std::string_view> txn(std::max<size_t>(1, (64 << 10) / record_bytes), payload);
  uint64_t records = 0;
  while (records * record_bytes < total_bytes) {
    if (!log->append(txn)) std::abort();
    records += txn.size();
  }
  std::vector<wal::record_view> batch;
  for (auto _ : state) {
    auto reader = log->read_from(1);
    if (!reader) std::abort();
    uint64_t seen = 0;
    for (;;) {
      if (!reader->read(batch, 4096).ok()) std::abort();
      if (batch.empty()) break;
      seen += batch.size();
      benchmark::DoNotOptimize(batch.back().payload.data());
    }
    if (seen != records) std::abort();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * records * record_bytes));
}

BENCHMARK(BM_cursor_read)->ArgName("bytes")->Arg(100)->Arg(1024)->Arg(16384)->UseRealTime();

void BM_crc32c(benchmark::State& state) {
  std::string data(static_cast<size_t>(state.range(0)), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131);
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = crc32c::extend(crc, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
  state.SetLabel(crc32c::hardware_accelerated() ? "sse4.2" : "portable");
}

BENCHMARK(BM_crc32c)->ArgName("bytes")->Arg(100)->Arg(1024)->Arg(4096)->Arg(16384)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
