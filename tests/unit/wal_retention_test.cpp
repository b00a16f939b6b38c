#define CAF_SUITE wal_retention
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wal_fixture.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;
using namespace std::chrono_literals;

namespace {

// 200 bytes that name their sequence: 217-byte records.
std::string payload(uint64_t sequence) {
  std::string out = std::to_string(sequence) + ":";
  out.resize(200, 'r');
  return out;
}

struct fixture : testing::memory_wal_fixture {
  std::chrono::system_clock::time_point now{std::chrono::hours{24 * 365 * 50}};

  // 4096-byte segments: 18 records of 217 bytes each.
  fixture() : memory_wal_fixture(17, sync_policy::none(), 4096) {
    opts.clock = [this] { return now; };
    fs.set_clock([this] { return now; });
  }

  void append_until(wal::log& wal, uint64_t last) {
    while (wal.last_sequence() < last)
      CAF_REQUIRE(wal.append(payload(wal.last_sequence() + 1)).ok());
  }

  size_t segment_files() {
    auto names = fs.list("/wal");
    CAF_REQUIRE(names.ok());
    size_t count = 0;
    for (const auto& name : *names) count += parse_segment_file_name(name).has_value();
    return count;
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(wal_retention_tests, fixture)

CAF_TEST(drop_before removes whole segments below the sequence) {
  auto wal = open();
  append_until(*wal, 100);  // segments start at 1, 19, 37, 55, 73, 91
  CAF_REQUIRE_EQUAL(segment_files(), 6u);
  uint64_t bytes_before = wal->retained_bytes();
  auto dropped = wal->drop_before(40);  // 1..18 and 19..36 are all below 40
  CAF_REQUIRE(dropped.ok());
  CAF_CHECK_EQUAL(dropped->segments_removed, 2u);
  CAF_CHECK_EQUAL(dropped->records_removed, 36u);
  CAF_CHECK_EQUAL(dropped->bytes_removed, 2 * (segment_header_bytes + 18 * 217));
  CAF_CHECK_EQUAL(dropped->first_retained, 37u);
  CAF_REQUIRE_EQUAL(dropped->removed_files.size(), 2u);
  CAF_CHECK_EQUAL(dropped->removed_files[0], "/wal/00000000000000000001.wal");
  CAF_CHECK(!fs.exists("/wal/00000000000000000019.wal"));
  CAF_CHECK_EQUAL(wal->first_sequence(), 37u);
  CAF_CHECK_EQUAL(wal->retained_bytes(), bytes_before - dropped->bytes_removed);
  CAF_CHECK_EQUAL(segment_files(), 4u);
  // The first retained one is still readable; older ones are gone for good.
  auto reader = wal->read_from(37);
  CAF_REQUIRE(reader.ok());
  auto gone = wal->read_from(36);
  CAF_REQUIRE(!gone.ok());
  CAF_CHECK(gone.error().code() == errc::not_retained);
  CAF_CHECK_EQUAL(gone.error().message(),
                  "sequence 36 is no longer retained; first retained is 37");
  // Nothing is dropped twice; reopening agrees.
  auto twice = wal->drop_before(40);
  CAF_REQUIRE(twice.ok());
  CAF_CHECK_EQUAL(twice->segments_removed, 0u);
  wal.reset();
  wal = open();
  CAF_CHECK_EQUAL(wal->first_sequence(), 37u);
  CAF_CHECK_EQUAL(wal->last_sequence(), 100u);
}

CAF_TEST(the active segment is never dropped) {
  auto wal = open();
  append_until(*wal, 30);
  auto dropped = wal->drop_before(1000);
  CAF_REQUIRE(dropped.ok());
  CAF_CHECK_EQUAL(dropped->segments_removed, 1u);
  CAF_CHECK_EQUAL(wal->first_sequence(), 19u);
  CAF_CHECK_EQUAL(segment_files(), 1u);
  auto next = wal->append(payload(31));
  CAF_REQUIRE(next.ok());
  CAF_CHECK_EQUAL(next->first, 31u);
}

CAF_TEST(the byte cap drops the oldest segments) {
  opts.max_retained_bytes = 10000;
  opts.enforce_retention_on_roll = false;
  auto wal = open();
  append_until(*wal, 100);
  CAF_CHECK_GREATER(wal->retained_bytes(), 10000u);
  auto enforced = wal->enforce_retention();
  CAF_REQUIRE(enforced.ok());
  CAF_CHECK_EQUAL(enforced->segments_removed, 4u);  // 6 segments, 3926 bytes each when full
  CAF_CHECK_LESS_OR_EQUAL(wal->retained_bytes(), 10000u);
  CAF_CHECK_EQUAL(enforced->first_retained, 73u);
  CAF_CHECK_EQUAL(wal->first_sequence(), 73u);
}

CAF_TEST(the byte cap is enforced at every roll) {
  opts.max_retained_bytes = 10000;
  auto wal = open();
  append_until(*wal, 500);
  CAF_CHECK_LESS_OR_EQUAL(wal->retained_bytes(), 10000u + 4096u);
  CAF_CHECK_LESS_OR_EQUAL(segment_files(), 4u);
  CAF_CHECK_GREATER(wal->first_sequence(), 400u);
}

CAF_TEST(the age cap drops segments last written before the cap) {
  opts.max_retained_age = 60s;
  opts.enforce_retention_on_roll = false;
  auto wal = open();
  for (uint64_t segment = 0; segment < 5; ++segment) {
    append_until(*wal, (segment + 1) * 18);  // fills one segment
    now += 30s;
  }
  append_until(*wal, 91);  // rolls to the sixth
  // Segments were last written at t0, t0+30s, ... t0+120s; now is t0+150s.
  auto enforced = wal->enforce_retention();
  CAF_REQUIRE(enforced.ok());
  CAF_CHECK_EQUAL(enforced->segments_removed, 3u);  // written 150, 120 and 90 seconds ago
  CAF_CHECK_EQUAL(wal->first_sequence(), 55u);
  now += 1h;
  enforced = wal->enforce_retention();
  CAF_REQUIRE(enforced.ok());
  CAF_CHECK_EQUAL(enforced->segments_removed, 2u);  // all but the active one
  CAF_CHECK_EQUAL(segment_files(), 1u);
}

CAF_TEST(a cursor keeps reading a dropped segment it opened and then fails cleanly) {
  // Once reading the segment file, once the tail cache's copy of it.
  for (size_t cache_bytes : {size_t{0}, options{}.tail_cache_bytes}) {
    opts.tail_cache_bytes = cache_bytes;
    opts.dir = cache_bytes == 0 ? "/wal" : "/cached";
    auto wal = open();
    append_until(*wal, 100);
    auto reader = wal->read_from(1);
    CAF_REQUIRE(reader.ok());
    std::vector<record_view> batch;
    CAF_REQUIRE(reader->read(batch, 5).ok());
    CAF_CHECK_EQUAL(batch.back().sequence, 5u);
    // Retention removes the segment the cursor is reading and the next one.
    auto dropped = wal->drop_before(37);
    CAF_REQUIRE(dropped.ok());
    CAF_REQUIRE_EQUAL(dropped->segments_removed, 2u);
    CAF_CHECK(!fs.exists(opts.dir + "/00000000000000000001.wal"));
    // The cursor still holds the first file (or, reading from the tail cache,
    // its chunk) and finishes it ...
    uint64_t expected = 6;
    status st;
    while ((st = reader->read(batch, 5)).ok() && !batch.empty())
      for (const auto& record : batch) {
        CAF_CHECK_EQUAL(record.sequence, expected);
        CAF_CHECK(record.payload == payload(expected));
        ++expected;
      }
    CAF_CHECK_EQUAL(expected, 19u);
    // ... and cannot enter the dropped second one.
    CAF_REQUIRE(!st.ok());
    CAF_CHECK(st.code() == errc::not_retained);
    CAF_CHECK_EQUAL(st.message(), "sequence 19 is no longer retained; first retained is 37");
    // The error is sticky.
    auto again = reader->read(batch);
    CAF_CHECK_EQUAL(again.message(), st.message());
  }
}

CAF_TEST(cursors stay safe while retention runs concurrently with appends) {
  fs.set_clock([] { return std::chrono::system_clock::now(); });
  auto wal = open();
  // The writer goes on until the readers have seen plenty, so the test does
  // not depend on how the two cores are shared.
  constexpr uint64_t max_total = 300000;
  std::atomic<bool> writing{true};
  std::atomic<int> bad_records{0};
  std::atomic<int> other_errors{0};
  std::atomic<int> not_retained{0};
  std::atomic<uint64_t> records_read{0};
  std::thread writer{[&] {
    for (uint64_t i = 1; i <= max_total; ++i) {
      if (!wal->append(payload(i)).ok()) ++other_errors;
      if (records_read.load() > 20000 && not_retained.load() >= 3) break;
    }
    writing = false;
  }};
  std::thread dropper{[&] {
    while (writing) {
      uint64_t last = wal->last_sequence();
      if (last > 100) (void)wal->drop_before(last - 100);
      std::this_thread::yield();
    }
  }};
  auto read_loop = [&] {
    std::vector<record_view> batch;
    while (writing) {
      auto reader = wal->read_from(wal->first_sequence());
      if (!reader.ok()) {  // dropped between the two calls
        not_retained += reader.error().code() == errc::not_retained;
        continue;
      }
      uint64_t expected = reader->next_sequence();
      status st;
      while ((st = reader->read(batch, 16)).ok() && writing) {
        if (batch.empty()) std::this_thread::yield();
        for (const auto& record : batch)
          bad_records +=
              record.sequence != expected++ || record.payload != payload(record.sequence);
        records_read += batch.size();
      }
      if (st.ok()) continue;
      if (st.code() == errc::not_retained &&
          st.message().find(" is no longer retained; first retained is ") != std::string::npos)
        ++not_retained;
      else
        ++other_errors;
    }
  };
  std::thread reader_a{read_loop};
  std::thread reader_b{read_loop};
  writer.join();
  dropper.join();
  reader_a.join();
  reader_b.join();
  CAF_MESSAGE(records_read.load() << " records read, " << not_retained.load()
                                  << " not_retained restarts");
  CAF_CHECK_EQUAL(bad_records.load(), 0);
  CAF_CHECK_EQUAL(other_errors.load(), 0);
  CAF_CHECK_GREATER(records_read.load(), 20000u);
  CAF_CHECK_GREATER_OR_EQUAL(not_retained.load(), 3);
  uint64_t last = wal->last_sequence();
  CAF_REQUIRE(wal->drop_before(last - 100).ok());
  CAF_CHECK_GREATER(wal->first_sequence(), last - 200);
}

CAF_TEST(protect_from keeps what the host still needs from every kind of retention) {
  opts.max_retained_bytes = 4096;  // the cap alone would keep about one segment
  auto wal = open();
  wal->protect_from(40);    // the host's newest snapshot holds 1..39
  append_until(*wal, 100);  // segments start at 1, 19, 37, 55, 73, 91
  CAF_REQUIRE(wal->drop_before(101).ok());
  CAF_REQUIRE(wal->enforce_retention().ok());
  CAF_CHECK_EQUAL(wal->first_sequence(), 37u);  // the segment holding 40 stays
  auto cursor = wal->read_from(40);
  CAF_CHECK(cursor.ok());
  wal->protect_from(UINT64_MAX);
  CAF_REQUIRE(wal->enforce_retention().ok());
  CAF_CHECK_EQUAL(wal->first_sequence(), 91u);
}

CAF_TEST(skip_to continues after a snapshot and survives reopening) {
  {
    auto wal = open();
    append_until(*wal, 30);
    CAF_CHECK(!wal->skip_to(30).ok());  // it holds 30 already
    CAF_REQUIRE(wal->skip_to(500).ok());
    CAF_CHECK_EQUAL(wal->last_sequence(), 499u);
    CAF_CHECK_EQUAL(wal->durable_sequence(), 499u);
    CAF_CHECK_EQUAL(wal->first_sequence(), 500u);
    CAF_CHECK_EQUAL(segment_files(), 1u);
    CAF_CHECK(!wal->read_from(20).ok());
    auto appended = wal->append(payload(500));
    CAF_REQUIRE(appended.ok());
    CAF_CHECK_EQUAL(appended->first, 500u);
    CAF_REQUIRE(wal->sync().ok());
    CAF_REQUIRE(wal->close().ok());
  }
  auto wal = open();
  CAF_CHECK_EQUAL(wal->first_sequence(), 500u);
  CAF_CHECK_EQUAL(wal->last_sequence(), 500u);
  auto cursor = wal->read_from(500);
  CAF_REQUIRE(cursor.ok());
}

CAF_TEST_FIXTURE_SCOPE_END()
