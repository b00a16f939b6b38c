#define CAF_SUITE wal_cursor
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wal_fixture.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;

namespace {

// Payloads name their sequence, so any reader can check what it got.
std::string payload(uint64_t sequence, size_t size) {
  std::string out = std::to_string(sequence) + ":";
  while (out.size() < size) out += static_cast<char>('a' + (sequence + out.size()) % 26);
  return out;
}

struct fixture : testing::memory_wal_fixture {
  fixture() : memory_wal_fixture(13, sync_policy::none(), 8192) {}

  void append_until(wal::log& wal, uint64_t last, size_t size = 100) {
    while (wal.last_sequence() < last) {
      auto written = wal.append(payload(wal.last_sequence() + 1, size));
      CAF_REQUIRE(written.ok());
    }
  }

  // Runs `body` on a fresh file system once reading every record from the
  // segment files (no tail cache) and once with the default tail cache.
  template <class Body>
  void with_and_without_cache(Body body) {
    for (size_t cache_bytes : {size_t{0}, options{}.tail_cache_bytes}) {
      memory_file_system local{13};
      opts.fs = &local;
      opts.tail_cache_bytes = cache_bytes;
      body();
    }
    opts.fs = &fs;
  }

  // Reads everything available now; checks order and content.
  uint64_t drain(cursor& reader, size_t size = 100) {
    std::vector<record_view> batch;
    uint64_t count = 0;
    for (;;) {
      uint64_t expected = reader.next_sequence();
      auto st = reader.read(batch, 37);
      CAF_REQUIRE(st.ok());
      if (batch.empty()) return count;
      for (const auto& record : batch) {
        CAF_CHECK_EQUAL(record.sequence, expected);
        CAF_CHECK(record.payload == payload(expected, size));
        ++expected;
      }
      CAF_CHECK_EQUAL(reader.next_sequence(), expected);
      count += batch.size();
    }
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(wal_cursor_tests, fixture)

CAF_TEST(a cursor starts at any retained sequence and reads across segments) {
  with_and_without_cache([&] {
    auto wal = open();
    append_until(*wal, 300);
    CAF_REQUIRE_GREATER(wal->stats().rolls, 3u);
    for (uint64_t start = 1; start <= 301; start += 7) {
      auto reader = wal->read_from(start);
      CAF_REQUIRE(reader.ok());
      CAF_CHECK_EQUAL(reader->next_sequence(), start);
      record_view first;
      auto got = reader->next(first);
      CAF_REQUIRE(got.ok());
      CAF_CHECK_EQUAL(*got, start <= 300);
      if (*got) CAF_CHECK_EQUAL(first.sequence, start);
      CAF_CHECK_EQUAL(drain(*reader) + (*got ? 1 : 0), 301 - start);
    }
  });
}

CAF_TEST(a cursor follows the log as it grows) {
  with_and_without_cache([&] {
    auto wal = open();
    append_until(*wal, 10);
    auto reader = wal->read_from(1);
    CAF_REQUIRE(reader.ok());
    CAF_CHECK_EQUAL(drain(*reader), 10u);
    CAF_CHECK_EQUAL(drain(*reader), 0u);  // no more for now
    append_until(*wal, 250);              // across several rolls
    CAF_CHECK_EQUAL(drain(*reader), 240u);
    CAF_CHECK_EQUAL(reader->next_sequence(), 251u);
    auto at_end = wal->read_from(251);
    CAF_REQUIRE(at_end.ok());
    CAF_CHECK_EQUAL(drain(*at_end), 0u);
    append_until(*wal, 251);
    CAF_CHECK_EQUAL(drain(*at_end), 1u);
  });
}

CAF_TEST(a cursor reads only durable records) {
  with_and_without_cache([&] {
    opts.sync = *sync_policy::parse("interval:3600000");
    auto wal = open();
    append_until(*wal, 5);
    auto reader = wal->read_from(1);
    CAF_REQUIRE(reader.ok());
    CAF_CHECK_EQUAL(drain(*reader), 0u);
    CAF_REQUIRE(wal->sync().ok());
    CAF_CHECK_EQUAL(drain(*reader), 5u);
    append_until(*wal, 8);
    CAF_CHECK_EQUAL(drain(*reader), 0u);
    CAF_REQUIRE(wal->sync().ok());
    CAF_CHECK_EQUAL(drain(*reader), 3u);
  });
}

CAF_TEST(read_from outside the log is refused) {
  auto wal = open();
  append_until(*wal, 3);
  auto zero = wal->read_from(0);
  CAF_REQUIRE(!zero.ok());
  CAF_CHECK(zero.error().code() == errc::invalid_argument);
  auto beyond = wal->read_from(5);
  CAF_REQUIRE(!beyond.ok());
  CAF_CHECK(beyond.error().code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(beyond.error().message(), "sequence 5 is beyond the end of the log (last is 3)");
}

CAF_TEST(batches hand out views that stay valid until the next call) {
  with_and_without_cache([&] {
    opts.segment_bytes = 64 << 20;
    opts.cursor_chunk_bytes = 4096;  // many refills
    auto wal = open();
    std::vector<std::string> storage;
    std::vector<std::string_view> txn;
    for (uint64_t i = 1; i <= 200; ++i) storage.push_back(payload(i, 1 + i * 13 % 900));
    txn.assign(storage.begin(), storage.end());
    CAF_REQUIRE(wal->append(txn).ok());
    CAF_REQUIRE(wal->append(payload(201, 1 << 20)).ok());  // larger than the chunk
    CAF_REQUIRE(wal->append(payload(202, 0)).ok());
    auto reader = wal->read_from(1);
    CAF_REQUIRE(reader.ok());
    std::vector<record_view> batch;
    uint64_t expected = 1;
    for (;;) {
      CAF_REQUIRE(reader->read(batch, 1000).ok());
      if (batch.empty()) break;
      // All views of the batch at once, after the batch is complete.
      for (const auto& record : batch) {
        CAF_CHECK_EQUAL(record.sequence, expected);
        size_t size = expected <= 200 ? 1 + expected * 13 % 900 : expected == 201 ? 1 << 20 : 0;
        CAF_CHECK(record.payload == payload(expected, size));
        CAF_CHECK_EQUAL(record.commit(), expected >= 200);
        ++expected;
      }
    }
    CAF_CHECK_EQUAL(expected, 203u);
  });
}

CAF_TEST(a tailer thread reads everything a writer thread appends) {
  for (auto policy : {sync_policy::none(), sync_policy::group()}) {
    memory_file_system local{21};
    opts.fs = &local;
    opts.sync = policy;
    opts.tail_cache_chunk_bytes = 4096;  // the writer fills, the cache evicts, all the while
    auto wal = open();
    constexpr uint64_t total = 3000;
    std::thread writer{[&] {
      for (uint64_t i = 1; i <= total; i += 3) {
        std::string a = payload(i, 100), b = payload(i + 1, 100), c = payload(i + 2, 100);
        std::vector<std::string_view> txn{a, b, c};
        if (!wal->append(txn).ok()) return;
      }
    }};
    auto reader = wal->read_from(1);
    CAF_REQUIRE(reader.ok());
    uint64_t next = 1;
    bool in_order = true;
    std::vector<record_view> batch;
    while (next <= total) {
      auto st = reader->read(batch, 64);
      if (!st.ok()) break;
      if (batch.empty()) std::this_thread::yield();
      for (const auto& record : batch) {
        in_order &= record.sequence == next && record.payload == payload(next, 100) &&
                    record.commit() == (next % 3 == 0);
        ++next;
      }
    }
    writer.join();
    CAF_CHECK(in_order);
    CAF_CHECK_EQUAL(next, total + 1);
    CAF_CHECK_GREATER(wal->stats().rolls, 10u);
  }
}

CAF_TEST(records in the tail cache are read from memory exactly as the file holds them) {
  auto wal = open();
  append_until(*wal, 40);  // 40 records of 117 bytes: one 8 KiB segment
  auto path = join_path("/wal", segment_file_name(1));
  auto file = fs.contents(path);
  CAF_REQUIRE(file.ok());
  fs.flip_byte(path, segment_header_bytes + 20);  // the file's first payload is damaged now
  auto reader = wal->read_from(1);
  CAF_REQUIRE(reader.ok());
  std::vector<record_view> batch;
  CAF_REQUIRE(reader->read(batch, 100).ok());
  CAF_REQUIRE_EQUAL(batch.size(), 40u);
  size_t offset = segment_header_bytes;
  for (const auto& record : batch) {
    CAF_CHECK(record.payload == payload(record.sequence, 100));
    CAF_CHECK(record.encoded() == std::string_view{*file}.substr(offset, record.encoded().size()));
    offset += record.encoded().size();
  }
  // Without the cache the same read finds the damage.
  memory_file_system plain{13};
  opts.fs = &plain;
  opts.tail_cache_bytes = 0;
  auto uncached = open();
  append_until(*uncached, 40);
  plain.flip_byte(path, segment_header_bytes + 20);
  auto file_reader = uncached->read_from(1);
  CAF_REQUIRE(file_reader.ok());
  auto st = file_reader->read(batch, 100);
  CAF_CHECK(st.code() == errc::corruption);
}

CAF_TEST(a cursor that falls behind the tail cache goes on from the file without gap or repeat) {
  opts.tail_cache_bytes = 8192;
  opts.tail_cache_chunk_bytes = 4096;
  auto wal = open();
  append_until(*wal, 20);
  auto reader = wal->read_from(1);
  CAF_REQUIRE(reader.ok());
  std::vector<record_view> batch;
  CAF_REQUIRE(reader->read(batch, 5).ok());  // from the cache
  CAF_REQUIRE_EQUAL(batch.size(), 5u);
  append_until(*wal, 600);  // evicts every chunk it read from, across many segments
  CAF_CHECK_EQUAL(drain(*reader), 595u);
  CAF_CHECK_EQUAL(reader->next_sequence(), 601u);
  append_until(*wal, 650);  // caught up: the cache again
  CAF_CHECK_EQUAL(drain(*reader), 50u);
  // A cursor positioned in the middle of a segment, from the file.
  auto late = wal->read_from(333);
  CAF_REQUIRE(late.ok());
  CAF_CHECK_EQUAL(drain(*late), 318u);
}

CAF_TEST(the owner of a read keeps its views valid after their chunk left the tail cache) {
  opts.tail_cache_bytes = 8192;
  opts.tail_cache_chunk_bytes = 4096;
  for (size_t cursor_chunk : {size_t{4096}, size_t{1} << 20}) {
    memory_file_system local{17};
    opts.fs = &local;
    opts.cursor_chunk_bytes = cursor_chunk;
    auto wal = open();
    append_until(*wal, 200);
    for (uint64_t start : {uint64_t{1}, uint64_t{190}}) {  // from the file, from the cache
      auto reader = wal->read_from(start);
      CAF_REQUIRE(reader.ok());
      std::vector<record_view> batch;
      CAF_REQUIRE(reader->read(batch, 3).ok());
      CAF_REQUIRE_EQUAL(batch.size(), 3u);
      auto kept = batch;
      auto owner = reader->owner();
      CAF_REQUIRE(owner != nullptr);
      append_until(*wal, wal->last_sequence() + 300);  // the cache reuses what nobody holds
      CAF_CHECK_EQUAL(drain(*reader), wal->last_sequence() - start - 2);
      for (const auto& record : kept) {
        CAF_CHECK(record.payload == payload(record.sequence, 100));
        CAF_CHECK(record.encoded().data() == record.frame);
      }
    }
  }
}

CAF_TEST(a transaction larger than a tail cache chunk is read from the file) {
  opts.segment_bytes = 1 << 20;
  opts.tail_cache_chunk_bytes = 4096;
  auto wal = open();
  append_until(*wal, 3);
  CAF_REQUIRE(wal->append(payload(4, 10000)).ok());
  append_until(*wal, 9);
  auto reader = wal->read_from(1);
  CAF_REQUIRE(reader.ok());
  std::vector<record_view> batch;
  uint64_t expected = 1;
  while (reader->read(batch, 100).ok() && !batch.empty())
    for (const auto& record : batch) {
      CAF_CHECK_EQUAL(record.sequence, expected);
      CAF_CHECK(record.payload == payload(expected, expected == 4 ? 10000 : 100));
      ++expected;
    }
  CAF_CHECK_EQUAL(expected, 10u);
}

CAF_TEST_FIXTURE_SCOPE_END()
