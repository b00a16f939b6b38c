#define CAF_SUITE wal_sync
#include "caf/test/unit_test.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wal_fixture.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;
using namespace std::chrono_literals;

namespace {

struct fixture : testing::memory_wal_fixture {
  fixture() : memory_wal_fixture(9, sync_policy::group()) {}

  std::unique_ptr<wal::log> open(sync_policy policy) {
    opts.sync = policy;
    return memory_wal_fixture::open();
  }
};

// Appends from `threads` threads at once; counts appends whose records were
// not durable when append returned (must stay 0 for always and group).
struct concurrent_appends {
  std::atomic<int> failures{0};
  std::atomic<int> not_durable_on_return{0};
  std::atomic<int> done{0};

  void run(wal::log& wal, int threads, int appends_each) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        for (int i = 0; i < appends_each; ++i) {
          auto written = wal.append("thread " + std::to_string(t) + " append " + std::to_string(i));
          if (!written.ok()) {
            ++failures;
            continue;
          }
          if (wal.durable_sequence() < written->last) ++not_durable_on_return;
          ++done;
        }
      });
    for (auto& worker : workers) worker.join();
  }
};

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

CAF_TEST_FIXTURE_SCOPE(wal_sync_tests, fixture)

CAF_TEST(always syncs every append before it returns) {
  auto wal = open(sync_policy::always());
  uint64_t syncs_before = fs.sync_calls();
  for (uint64_t i = 1; i <= 20; ++i) {
    auto written = wal->append("record");
    CAF_REQUIRE(written.ok());
    CAF_CHECK_EQUAL(wal->durable_sequence(), i);
  }
  CAF_CHECK_EQUAL(wal->stats().syncs, 20u);
  CAF_CHECK_EQUAL(fs.sync_calls() - syncs_before, 20u);
}

CAF_TEST(group commit shares syncs between concurrent appenders) {
  fs.set_sync_latency(300us);  // a disk flush takes time
  auto wal = open(sync_policy::group());
  concurrent_appends load;
  load.run(*wal, 8, 50);
  CAF_CHECK_EQUAL(load.failures.load(), 0);
  CAF_CHECK_EQUAL(load.done.load(), 400);
  CAF_CHECK_EQUAL(load.not_durable_on_return.load(), 0);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 400u);
  auto stats = wal->stats();
  CAF_MESSAGE("group commit: " << stats.appends << " appends, " << stats.syncs << " syncs");
  CAF_CHECK_EQUAL(stats.appends, 400u);
  CAF_CHECK_LESS(stats.syncs, stats.appends / 2);
  // Everything acknowledged survives losing all unsynced data.
  wal.reset();
  fs.crash(memory_file_system::crash_mode::drop_unsynced);
  auto reopened = open(sync_policy::group());
  CAF_CHECK_EQUAL(reopened->last_sequence(), 400u);
}

CAF_TEST(group commit on the posix file system) {
  char pattern[] = "/tmp/walrus-wal-sync-XXXXXX";
  CAF_REQUIRE(::mkdtemp(pattern) != nullptr);
  opts.dir = pattern;
  opts.fs = nullptr;
  {
    auto wal = open(sync_policy::group());
    concurrent_appends load;
    load.run(*wal, 4, 25);
    CAF_CHECK_EQUAL(load.failures.load(), 0);
    CAF_CHECK_EQUAL(load.not_durable_on_return.load(), 0);
    CAF_CHECK_EQUAL(wal->durable_sequence(), 100u);
    CAF_MESSAGE("posix group commit: " << wal->stats().syncs << " syncs for 100 appends");
    CAF_CHECK_LESS(wal->stats().syncs, 100u);
  }
  std::filesystem::remove_all(pattern);
}

CAF_TEST(interval appends return at once and a background thread syncs) {
  fs.set_sync_latency(200us);
  auto wal = open(sync_policy::every(5ms));
  uint64_t syncs_before = fs.sync_calls();
  for (int i = 0; i < 50; ++i) CAF_REQUIRE(wal->append("record").ok());
  CAF_CHECK(wait_until([&] { return wal->durable_sequence() == 50; }));
  CAF_CHECK_GREATER(fs.sync_calls(), syncs_before);
  CAF_CHECK_LESS(wal->stats().syncs, 50u);
}

CAF_TEST(interval durability lags until the interval passes or sync is called) {
  auto wal = open(*sync_policy::parse("interval:3600000"));
  for (int i = 0; i < 10; ++i) CAF_REQUIRE(wal->append("record").ok());
  CAF_CHECK_EQUAL(wal->last_sequence(), 10u);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 0u);
  CAF_CHECK_EQUAL(wal->stats().syncs, 0u);
  CAF_REQUIRE(wal->sync().ok());
  CAF_CHECK_EQUAL(wal->durable_sequence(), 10u);
  // close() syncs what the thread has not yet.
  CAF_REQUIRE(wal->append("eleven").ok());
  CAF_REQUIRE(wal->close().ok());
  CAF_CHECK_EQUAL(wal->durable_sequence(), 11u);
}

CAF_TEST(none never syncs and durable means written to the os) {
  auto wal = open(sync_policy::none());
  uint64_t syncs_before = fs.sync_calls();
  for (uint64_t i = 1; i <= 10; ++i) {
    CAF_REQUIRE(wal->append("record").ok());
    CAF_CHECK_EQUAL(wal->durable_sequence(), i);
  }
  CAF_CHECK_EQUAL(fs.sync_calls(), syncs_before);
  CAF_CHECK_EQUAL(wal->stats().syncs, 0u);
  // sync() still syncs for real.
  CAF_REQUIRE(wal->sync().ok());
  CAF_CHECK_EQUAL(fs.sync_calls(), syncs_before + 1);
}

CAF_TEST(none keeps a bounded number of sealed segments waiting for sync) {
  opts.segment_bytes = 4096;
  auto wal = open(sync_policy::none());
  std::string record(1000, 'n');
  while (wal->stats().rolls < 40) CAF_REQUIRE(wal->append(record).ok());
  // 16 sealed segments wait for sync(); the 24 older ones were synced when
  // the bound was hit.
  CAF_CHECK_EQUAL(wal->stats().syncs, 24u);
  CAF_REQUIRE(wal->sync().ok());
  CAF_CHECK_EQUAL(wal->stats().syncs, 24u + 16u + 1u);
  // Everything is durable now, including the new files' directory entries.
  uint64_t last = wal->last_sequence();
  wal.reset();
  fs.crash(memory_file_system::crash_mode::drop_unsynced);
  auto reopened = open(sync_policy::none());
  CAF_CHECK_EQUAL(reopened->last_sequence(), last);
}

CAF_TEST(the commit hook sees increasing durable sequences) {
  fs.set_sync_latency(100us);
  std::mutex mu;
  std::vector<uint64_t> seen;
  auto wal = open(sync_policy::group());
  wal->set_commit_hook([&](uint64_t durable) {
    std::lock_guard<std::mutex> guard{mu};
    seen.push_back(durable);
  });
  concurrent_appends load;
  load.run(*wal, 4, 50);
  std::lock_guard<std::mutex> guard{mu};
  CAF_REQUIRE(!seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) CAF_CHECK_LESS(seen[i - 1], seen[i]);
  CAF_CHECK_EQUAL(seen.back(), 200u);
  CAF_CHECK_LESS_OR_EQUAL(seen.size(), 200u);
}

CAF_TEST(the commit hook fires for every policy and may call back into the log) {
  for (const char* policy : {"always", "none", "interval:1", "group"}) {
    memory_file_system local{1};
    opts.fs = &local;
    opts.dir = std::string{"/wal-"} + policy;
    std::atomic<uint64_t> last_seen{0};  // outlives the log and its hook
    std::atomic<int> calls{0};
    auto wal = open(*sync_policy::parse(policy));
    wal->set_commit_hook([&](uint64_t durable) {
      ++calls;
      last_seen = durable;
      // Re-entrant use: appending from the hook must not deadlock.
      if (durable == 3) (void)wal->append("from the hook");
    });
    for (int i = 0; i < 3; ++i) CAF_REQUIRE(wal->append("record").ok());
    CAF_CHECK(wait_until([&] { return last_seen.load() == 4; }));
    CAF_CHECK_GREATER(calls.load(), 0);
    CAF_CHECK_EQUAL(wal->last_sequence(), 4u);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()
