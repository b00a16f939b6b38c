#define CAF_SUITE wal_log
#include "caf/test/unit_test.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/records.hpp"
#include "tests/support/wal_fixture.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;

namespace {

struct read_record {
  uint64_t sequence;
  bool commit;
  std::string payload;
};

// Every durable record from `from` on, through a cursor.
std::vector<read_record> read_all(const wal::log& wal, uint64_t from) {
  auto reader = wal.read_from(from);
  CAF_REQUIRE(reader.ok());
  std::vector<read_record> out;
  std::vector<record_view> batch;
  for (;;) {
    auto st = reader->read(batch, 100);
    CAF_REQUIRE(st.ok());
    if (batch.empty()) return out;
    for (const auto& record : batch)
      out.push_back({record.sequence, record.commit(), std::string{record.payload}});
  }
}

// Deterministic content: byte i of payload `n` depends on both.
std::string payload(uint64_t n, size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((n * 131 + i * 7) & 0xFF);
  return out;
}

struct fixture : testing::memory_wal_fixture {
  fixture() : memory_wal_fixture(7, sync_policy::always()) {}
};

// A real directory under /tmp, removed afterwards.
struct temp_dir {
  std::string path;
  temp_dir() {
    char pattern[] = "/tmp/walrus-wal-log-XXXXXX";
    CAF_REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(wal_log_tests, fixture)

CAF_TEST(a fresh log is empty and starts at sequence 1) {
  auto wal = open();
  CAF_CHECK_EQUAL(wal->first_sequence(), 1u);
  CAF_CHECK_EQUAL(wal->last_sequence(), 0u);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 0u);
  CAF_CHECK(fs.exists("/wal/00000000000000000001.wal"));
  CAF_CHECK(read_all(*wal, 1).empty());
  CAF_CHECK(!wal->recovery().truncated());
}

CAF_TEST(records of many sizes round trip in order) {
  std::vector<size_t> sizes{0, 1, 2, 16, 17, 100, 1000, 4095, 4096, 65536, 1u << 20};
  auto wal = open();
  uint64_t n = 0;
  for (size_t size : sizes) {
    auto written = wal->append(payload(++n, size));
    CAF_REQUIRE(written.ok());
    CAF_CHECK_EQUAL(written->first, n);
    CAF_CHECK_EQUAL(written->last, n);
  }
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    CAF_CHECK_EQUAL(records[i].sequence, i + 1);
    CAF_CHECK(records[i].commit);
    CAF_CHECK(records[i].payload == payload(i + 1, sizes[i]));
  }
  // The same bytes come back after a reopen.
  wal.reset();
  wal = open();
  CAF_CHECK_EQUAL(wal->last_sequence(), sizes.size());
  auto reread = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(reread.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) CAF_CHECK(reread[i].payload == records[i].payload);
}

CAF_TEST(a transaction gets consecutive sequences and one commit at its end) {
  auto wal = open();
  std::vector<std::string> storage{"a", "", "ccc", "dddd"};
  std::vector<std::string_view> txn(storage.begin(), storage.end());
  auto first = wal->append(txn);
  CAF_REQUIRE(first.ok());
  CAF_CHECK_EQUAL(first->first, 1u);
  CAF_CHECK_EQUAL(first->last, 4u);
  auto second = wal->append(txn);
  CAF_REQUIRE(second.ok());
  CAF_CHECK_EQUAL(second->first, 5u);
  CAF_CHECK_EQUAL(second->last, 8u);
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    CAF_CHECK_EQUAL(records[i].payload, storage[i % 4]);
    CAF_CHECK_EQUAL(records[i].commit, i % 4 == 3);
  }
  // One append = one write() of the whole transaction.
  uint64_t writes_before = fs.write_calls();
  CAF_REQUIRE(wal->append(txn).ok());
  CAF_CHECK_EQUAL(fs.write_calls(), writes_before + 1);
}

CAF_TEST(invalid appends are refused without side effects) {
  auto wal = open();
  auto empty = wal->append(nullptr, 0);
  CAF_REQUIRE(!empty.ok());
  CAF_CHECK(empty.error().code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(wal->last_sequence(), 0u);
  // Sizes are checked before any byte is read: the views may point anywhere.
  static const char tiny[1] = {0};
  std::string_view too_big{tiny, size_t{max_payload_bytes} + 1};
  auto huge = wal->append(too_big);
  CAF_REQUIRE(!huge.ok());
  CAF_CHECK(huge.error().code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(huge.error().message(),
                  "payload 0 of 1 is 1073741825 bytes; the maximum is 1073741824");
  std::vector<std::string_view> too_many(3, std::string_view{tiny, max_payload_bytes});
  auto oversized = wal->append(too_many);
  CAF_REQUIRE(!oversized.ok());
  CAF_CHECK(oversized.error().code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(wal->last_sequence(), 0u);
  CAF_REQUIRE(wal->append("still fine").ok());
  CAF_CHECK(wal->health().ok());
}

CAF_TEST(transactions never span segments across rolls) {
  opts.segment_bytes = 4096;
  auto wal = open();
  // Transactions of 1..9 records of 150 bytes: several per segment, and the
  // roll always falls between transactions.
  std::vector<sequence_range> ranges;
  for (uint64_t t = 0; t < 60; ++t) {
    std::vector<std::string> storage;
    for (uint64_t r = 0; r <= t % 9; ++r) storage.push_back(payload(t * 10 + r, 150));
    std::vector<std::string_view> txn(storage.begin(), storage.end());
    auto written = wal->append(txn);
    CAF_REQUIRE(written.ok());
    ranges.push_back(*written);
  }
  CAF_CHECK_GREATER(wal->stats().rolls, 5u);
  auto files = fs.list("/wal");
  CAF_REQUIRE(files.ok());
  for (const auto& name : *files) {
    auto first = parse_segment_file_name(name);
    CAF_REQUIRE(first.has_value());
    // Each segment starts at the first sequence of a transaction.
    bool starts_a_transaction = false;
    for (const auto& range : ranges) starts_a_transaction |= range.first == *first;
    CAF_CHECK(starts_a_transaction || *first == ranges.back().last + 1);
    auto bytes = fs.contents("/wal/" + name);
    CAF_REQUIRE(bytes.ok());
    CAF_CHECK_LESS_OR_EQUAL(bytes->size(), 4096u);
  }
  // Reopen: every transaction comes back whole, in order, across segments.
  wal.reset();
  wal = open();
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), ranges.back().last);
  for (const auto& range : ranges)
    for (uint64_t seq = range.first; seq <= range.last; ++seq)
      CAF_CHECK_EQUAL(records[seq - 1].commit, seq == range.last);
}

CAF_TEST(a transaction larger than a segment gets its own oversized segment) {
  opts.segment_bytes = 4096;
  auto wal = open();
  CAF_REQUIRE(wal->append("small").ok());
  std::vector<std::string> storage(10, payload(3, 1000));
  std::vector<std::string_view> big(storage.begin(), storage.end());
  auto written = wal->append(big);
  CAF_REQUIRE(written.ok());
  CAF_CHECK_EQUAL(written->first, 2u);
  CAF_CHECK_EQUAL(written->last, 11u);
  auto oversized = fs.contents("/wal/00000000000000000002.wal");
  CAF_REQUIRE(oversized.ok());
  CAF_CHECK_EQUAL(oversized->size(), segment_header_bytes + 10 * (record_header_bytes + 1000));
  CAF_REQUIRE(wal->append("after").ok());
  CAF_CHECK(fs.exists("/wal/00000000000000000012.wal"));
  wal.reset();
  wal = open();
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), 12u);
  CAF_CHECK_EQUAL(records[11].payload, "after");
}

CAF_TEST(numbering continues after reopen) {
  {
    auto wal = open();
    for (int i = 0; i < 10; ++i) CAF_REQUIRE(wal->append(payload(i, 10)).ok());
    CAF_REQUIRE(wal->close().ok());
    auto closed = wal->append("late");
    CAF_REQUIRE(!closed.ok());
    CAF_CHECK(closed.error().code() == errc::closed);
  }
  auto wal = open();
  CAF_CHECK_EQUAL(wal->last_sequence(), 10u);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 10u);
  auto next = wal->append("eleven");
  CAF_REQUIRE(next.ok());
  CAF_CHECK_EQUAL(next->first, 11u);
}

CAF_TEST(several transactions go in one append with their commit flags) {
  auto wal = open();
  std::vector<std::string> payloads{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  std::vector<std::string_view> views(payloads.begin(), payloads.end());
  // Transactions [a], [b c d], [e .. i], [j]: commits at 0, 3, 8, 9.
  std::string bits{static_cast<char>(0x09), static_cast<char>(0x03)};
  auto range = wal->append_transactions(views.data(), views.size(), bits);
  CAF_REQUIRE(range.ok());
  CAF_CHECK_EQUAL(range->first, 1u);
  CAF_CHECK_EQUAL(range->last, 10u);
  CAF_CHECK_EQUAL(fs.write_calls(), 1u + 1u);  // the segment header, then one write
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), 10u);
  for (size_t i = 0; i < records.size(); ++i) {
    CAF_CHECK_EQUAL(records[i].payload, payloads[i]);
    CAF_CHECK_EQUAL(records[i].commit, i == 0 || i == 3 || i == 8 || i == 9);
  }
  // The last record must end a transaction.
  auto refused = wal->append_transactions(views.data(), 2, std::string(1, '\x01'));
  CAF_CHECK(refused.error().code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(wal->last_sequence(), 10u);
}

CAF_TEST(records framed elsewhere are appended byte for byte) {
  auto wal = open();
  CAF_REQUIRE(wal->append("local").ok());
  auto a = testing::framed_records(2, {"b", "c"}, {false, true});
  auto b = testing::framed_records(4, {"d", payload(5, 3000), "f"}, {false, false, true});
  std::string_view pieces[] = {a, b};
  auto range = wal->append_encoded(pieces, 2, 5);
  CAF_REQUIRE(range.ok());
  CAF_CHECK_EQUAL(range->first, 2u);
  CAF_CHECK_EQUAL(range->last, 6u);
  CAF_CHECK_EQUAL(wal->durable_sequence(), 6u);  // sync always
  auto records = read_all(*wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), 6u);
  CAF_CHECK_EQUAL(records[4].payload, payload(5, 3000));
  CAF_CHECK(records[2].commit && !records[3].commit && records[5].commit);
  auto file = fs.contents(join_path("/wal", segment_file_name(1)));
  CAF_REQUIRE(file.ok());
  CAF_CHECK_EQUAL(file->substr(file->size() - a.size() - b.size()), a + b);
  CAF_CHECK(wal->append("after").ok());
  CAF_CHECK_EQUAL(wal->last_sequence(), 7u);
}

CAF_TEST(records framed elsewhere that do not continue the log whole are refused) {
  auto wal = open();
  CAF_REQUIRE(wal->append("one").ok());
  auto refused = [&](std::string bytes, uint64_t count, const std::string& why) {
    std::string_view piece{bytes};
    auto appended = wal->append_encoded(&piece, 1, count);
    CAF_REQUIRE(!appended.ok());
    CAF_CHECK(appended.error().code() == errc::invalid_argument);
    CAF_CHECK_EQUAL(appended.error().message(), why);
  };
  refused(testing::framed_records(3, {"x"}, {true}), 1,
          "records to append start at 3, the log continues at 2");
  auto good = testing::framed_records(2, {"x", "y"}, {false, true});
  refused(good.substr(0, good.size() - 1), 2, "record 1 of 2 to append: payload cut short");
  refused(good.substr(0, 10), 1, "record 0 of 1 to append: header cut short");
  refused(testing::framed_records(2, {"x", "y"}, {true, false}), 2,
          "the last record of a batch of transactions must commit");
  refused(testing::framed_records(2, {"x"}, {true}) + testing::framed_records(4, {"y"}, {true}), 2,
          "record 1 of 2 to append: sequence out of order");
  refused(good, 3, "append of 3 records found 2");
  auto other = testing::framed_records(2, {"x"}, {true});
  other[8] = static_cast<char>(make_flags(record_type::invalid, true));
  refused(other, 1, "record 0 of 1 to append: not data");
  CAF_CHECK_EQUAL(wal->last_sequence(), 1u);
  std::string_view piece{good};
  CAF_CHECK(wal->append_encoded(&piece, 1, 2).ok());
  CAF_CHECK_EQUAL(wal->last_sequence(), 3u);
}

CAF_TEST(invalid options are refused) {
  opts.segment_bytes = 100;
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK(opened.error().code() == errc::invalid_argument);
  opts.segment_bytes = 1 << 20;
  opts.dir = "";
  CAF_CHECK(!wal::log::open(opts).ok());
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST(the posix file system round trips a log across segments) {
  temp_dir dir;
  options opts;
  opts.dir = dir.path + "/nested/wal";
  opts.sync = sync_policy::none();
  opts.segment_bytes = 64 << 10;
  {
    auto wal = wal::log::open(opts);
    CAF_REQUIRE(wal.ok());
    for (uint64_t i = 1; i <= 300; ++i) CAF_REQUIRE((*wal)->append(payload(i, i * 3)).ok());
    CAF_REQUIRE((*wal)->sync().ok());
    CAF_CHECK_GREATER((*wal)->stats().rolls, 0u);
  }
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  auto records = read_all(**wal, 1);
  CAF_REQUIRE_EQUAL(records.size(), 300u);
  for (uint64_t i = 1; i <= 300; ++i) CAF_CHECK(records[i - 1].payload == payload(i, i * 3));
  size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(opts.dir))
    segments += parse_segment_file_name(entry.path().filename().string()).has_value();
  CAF_CHECK_GREATER(segments, 1u);
}
