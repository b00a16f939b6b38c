#define CAF_SUITE wal_faults
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wal_fixture.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;

namespace {

std::vector<std::pair<uint64_t, std::string>> read_all(const wal::log& wal) {
  auto reader = wal.read_from(wal.first_sequence());
  CAF_REQUIRE(reader.ok());
  std::vector<std::pair<uint64_t, std::string>> out;
  std::vector<record_view> batch;
  for (;;) {
    auto st = reader->read(batch);
    CAF_REQUIRE(st.ok());
    if (batch.empty()) return out;
    for (const auto& r : batch) out.emplace_back(r.sequence, std::string{r.payload});
  }
}

std::string payload(uint64_t n) {
  return "record " + std::to_string(n) + std::string(n % 50, '.');
}

// The bytes of `path` (empty when missing), by value for the check macros.
std::string contents_of(const memory_file_system& fs, const std::string& path) {
  auto bytes = fs.contents(path);
  return bytes.ok() ? *bytes : std::string{};
}

constexpr const char* first_segment = "/wal/00000000000000000001.wal";

struct fixture : testing::memory_wal_fixture {
  fixture() : memory_wal_fixture(5, sync_policy::always()) {}

  // Appends records 1..n, one per transaction, all acknowledged.
  void append_acknowledged(wal::log& wal, uint64_t n) {
    for (uint64_t i = 1; i <= n; ++i) {
      auto written = wal.append(payload(i));
      CAF_REQUIRE(written.ok());
      CAF_REQUIRE_EQUAL(written->last, i);
    }
  }

  // After a crash, the reopened log holds exactly records 1..n.
  void check_exactly(uint64_t n) {
    auto wal = open();
    CAF_CHECK_EQUAL(wal->last_sequence(), n);
    auto records = read_all(*wal);
    CAF_REQUIRE_EQUAL(records.size(), n);
    for (uint64_t i = 1; i <= n; ++i) CAF_CHECK_EQUAL(records[i - 1].second, payload(i));
    auto next = wal->append("after");
    CAF_REQUIRE(next.ok());
    CAF_CHECK_EQUAL(next->first, n + 1);
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(wal_faults_tests, fixture)

CAF_TEST(a torn write fails the append and the log for good) {
  auto wal = open();
  append_acknowledged(*wal, 5);
  fs.tear_next_write(10);
  std::vector<std::string_view> txn{"a", "b", "c"};
  auto torn = wal->append(txn);
  CAF_REQUIRE(!torn.ok());
  CAF_CHECK(torn.error().code() == errc::io_error);
  const std::string cause =
      std::string{"write "} + first_segment + ": Input/output error (errno 5)";
  CAF_CHECK_EQUAL(torn.error().message(), cause);
  // Later calls fail with the same cause and never succeed silently.
  auto later = wal->append("later");
  CAF_REQUIRE(!later.ok());
  CAF_CHECK_EQUAL(later.error().message(), cause);
  auto synced = wal->sync();
  CAF_CHECK_EQUAL(synced.message(), cause);
  auto health = wal->health();
  CAF_CHECK_EQUAL(health.message(), cause);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 5u);
  CAF_CHECK_EQUAL(wal->last_sequence(), 5u);
  // Cursors never see the torn bytes.
  CAF_CHECK_EQUAL(read_all(*wal).size(), 5u);
  wal.reset();
  fs.crash(memory_file_system::crash_mode::keep_unsynced);
  check_exactly(5);
}

CAF_TEST(a failed fsync is never retried into a false success) {
  auto wal = open();
  append_acknowledged(*wal, 3);
  fs.fail_next_sync();
  auto failed = wal->append("lost");
  CAF_REQUIRE(!failed.ok());
  CAF_CHECK(failed.error().code() == errc::io_error);
  const std::string cause =
      std::string{"fdatasync "} + first_segment + ": Input/output error (errno 5)";
  CAF_CHECK_EQUAL(failed.error().message(), cause);
  // The fake now reports success for the next fsync although the bytes
  // never reached the disk (Linux after a writeback error). The log must not
  // ask: sync() fails without calling fsync again.
  uint64_t syncs = fs.sync_calls();
  auto retried = wal->sync();
  CAF_CHECK_EQUAL(retried.message(), cause);
  CAF_CHECK_EQUAL(fs.sync_calls(), syncs);
  auto later = wal->append("later");
  CAF_REQUIRE(!later.ok());
  CAF_CHECK_EQUAL(later.error().message(), cause);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 3u);
  wal.reset();
  // The unsynced record reads back as zeros: a torn tail, dropped.
  fs.crash(memory_file_system::crash_mode::keep_unsynced);
  check_exactly(3);
}

CAF_TEST(disk full fails the append with disk_full and keeps what was acknowledged) {
  auto wal = open();
  append_acknowledged(*wal, 4);
  fs.set_capacity(fs.contents(first_segment)->size() + 30);
  auto full = wal->append(std::string(100, 'x'));
  CAF_REQUIRE(!full.ok());
  CAF_CHECK(full.error().code() == errc::disk_full);
  const std::string cause =
      std::string{"write "} + first_segment + ": No space left on device (errno 28)";
  CAF_CHECK_EQUAL(full.error().message(), cause);
  fs.set_capacity(0);  // space again: the log stays failed until reopened
  auto later = wal->append("small");
  CAF_REQUIRE(!later.ok());
  CAF_CHECK(later.error().code() == errc::disk_full);
  CAF_CHECK_EQUAL(later.error().message(), cause);
  wal.reset();
  // No crash: the 30 bytes written are a torn tail for recovery.
  auto reopened = open();
  CAF_CHECK_EQUAL(reopened->recovery().dropped_bytes, 30u);
  reopened.reset();
  check_exactly(4);
}

CAF_TEST(a crash tears only unsynced transactions and never splits one) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    memory_file_system crashing{seed};
    options o = opts;
    o.fs = &crashing;
    o.segment_bytes = 4096;
    (void)wal::log::open(o);  // creates the first segment durably
    o.sync = sync_policy::none();
    std::vector<sequence_range> acknowledged;
    {
      auto wal = wal::log::open(o);
      if (!wal.ok()) CAF_FAIL(wal.error().to_string());
      for (uint64_t t = 1; t <= 30; ++t) {
        std::vector<std::string> storage(1 + t % 4, payload(t) + std::string(100, 'p'));
        std::vector<std::string_view> txn(storage.begin(), storage.end());
        auto written = (*wal)->append(txn);
        CAF_REQUIRE(written.ok());
        acknowledged.push_back(*written);
        if (t == 20) CAF_REQUIRE((*wal)->sync().ok());  // 1..20 must survive
      }
      CAF_REQUIRE_GREATER((*wal)->stats().rolls, 0u);
      crashing.crash(memory_file_system::crash_mode::tear_unsynced);
    }
    o.recovery = recovery_mode::skip_damaged_segments;  // unsynced rolls may leave gaps
    auto wal = wal::log::open(o);
    if (!wal.ok()) CAF_FAIL("seed " << seed << ": " << wal.error().to_string());
    uint64_t last = (*wal)->last_sequence();
    CAF_CHECK_GREATER_OR_EQUAL(last, acknowledged[19].last);
    CAF_CHECK(!(*wal)->recovery().lost_data());
    bool at_transaction_end = false;
    for (const auto& range : acknowledged) at_transaction_end |= range.last == last;
    CAF_CHECK(at_transaction_end);
    CAF_CHECK_EQUAL(read_all(**wal).size(), last);
  }
}

CAF_TEST(appends acknowledged under group commit survive a crash in the middle) {
  opts.sync = sync_policy::group();
  fs.set_sync_latency(std::chrono::microseconds{300});
  auto wal = open();
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> acknowledged;
  std::atomic<bool> crashing{false};
  std::atomic<int> failed_before_crash{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 200; ++i) {
        std::string text = "writer " + std::to_string(w) + " record " + std::to_string(i);
        auto written = wal->append(text);
        if (!written.ok()) {
          // Only the crash fails appends (checked on the main thread).
          if (!crashing.load()) ++failed_before_crash;
          return;
        }
        std::lock_guard<std::mutex> guard{mu};
        acknowledged.emplace_back(written->first, text);
      }
    });
  }
  while (wal->durable_sequence() < 200) std::this_thread::yield();
  crashing = true;
  fs.crash(memory_file_system::crash_mode::drop_unsynced);
  for (auto& writer : writers) writer.join();
  CAF_CHECK_EQUAL(failed_before_crash.load(), 0);
  CAF_CHECK(!wal->health().ok());
  wal.reset();
  auto reopened = open();
  auto records = read_all(*reopened);
  CAF_CHECK_GREATER_OR_EQUAL(records.size(), acknowledged.size());
  for (const auto& [sequence, text] : acknowledged) {
    CAF_REQUIRE_LESS_OR_EQUAL(sequence, records.size());
    CAF_CHECK_EQUAL(records[sequence - 1].second, text);
  }
}

CAF_TEST_FIXTURE_SCOPE_END()

// The fake itself: what survives a crash.
CAF_TEST(the memory file system keeps synced bytes and loses the rest on a crash) {
  memory_file_system fs{1};
  CAF_REQUIRE(fs.create_directories("/d").ok());
  auto kept = fs.open("/d/kept", open_mode::create_new);
  auto lost = fs.open("/d/lost", open_mode::create_new);
  CAF_REQUIRE(kept.ok() && lost.ok());
  CAF_REQUIRE((*kept)->append("synced", 6).ok());
  CAF_REQUIRE((*kept)->sync().ok());
  CAF_REQUIRE(fs.sync_dir("/d").ok());  // both entries durable
  CAF_REQUIRE((*kept)->append("+unsynced", 9).ok());
  auto late = fs.open("/d/late", open_mode::create_new);  // entry never synced
  CAF_REQUIRE(late.ok());
  fs.crash(memory_file_system::crash_mode::drop_unsynced);
  CAF_CHECK_EQUAL(contents_of(fs, "/d/kept"), "synced");
  CAF_CHECK_EQUAL(contents_of(fs, "/d/lost"), "");
  CAF_CHECK(!fs.exists("/d/late"));
  // Handles from before the crash are dead.
  auto stale = (*kept)->append("x", 1);
  CAF_CHECK(!stale.ok());
}

CAF_TEST(the memory file system tears unsynced bytes deterministically per seed) {
  auto survivor = [](uint64_t seed) {
    memory_file_system fs{seed};
    (void)fs.create_directories("/d");
    auto f = fs.open("/d/f", open_mode::create_new);
    (void)(*f)->append("0123456789", 10);
    (void)(*f)->sync();
    (void)fs.sync_dir("/d");
    (void)(*f)->append("abcdefghijklmnopqrstuvwxyz", 26);
    fs.crash(memory_file_system::crash_mode::tear_unsynced);
    return *fs.contents("/d/f");
  };
  std::set<size_t> lengths;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::string bytes = survivor(seed);
    CAF_CHECK_EQUAL(bytes, survivor(seed));  // same seed, same outcome
    CAF_REQUIRE_GREATER_OR_EQUAL(bytes.size(), 10u);
    CAF_CHECK_EQUAL(bytes,
                    std::string{"0123456789abcdefghijklmnopqrstuvwxyz"}.substr(0, bytes.size()));
    lengths.insert(bytes.size());
  }
  CAF_CHECK_GREATER(lengths.size(), 10u);  // really torn at different points
}

CAF_TEST(bytes of a failed fsync read back but never reach the disk) {
  memory_file_system fs{1};
  (void)fs.create_directories("/d");
  auto f = fs.open("/d/f", open_mode::create_new);
  CAF_REQUIRE(f.ok());
  CAF_REQUIRE((*f)->append("good", 4).ok());
  CAF_REQUIRE((*f)->sync().ok());
  CAF_REQUIRE(fs.sync_dir("/d").ok());
  CAF_REQUIRE((*f)->append("lost", 4).ok());
  fs.fail_next_sync();
  CAF_CHECK(!(*f)->sync().ok());
  CAF_CHECK_EQUAL(contents_of(fs, "/d/f"), "goodlost");  // still visible
  CAF_REQUIRE((*f)->append("more", 4).ok());
  CAF_CHECK((*f)->sync().ok());  // "succeeds", but the lost pages stay lost
  fs.crash(memory_file_system::crash_mode::drop_unsynced);
  CAF_CHECK_EQUAL(contents_of(fs, "/d/f"), std::string("good\0\0\0\0more", 12));
}
