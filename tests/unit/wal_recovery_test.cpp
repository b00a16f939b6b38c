#define CAF_SUITE wal_recovery
#include "caf/test/unit_test.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "base/crc32c.hpp"
#include "tests/support/wal_fixture.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::wal;

namespace {

using files = std::map<std::string, std::string>;  // name -> bytes

std::vector<std::pair<uint64_t, std::string>> read_all(const wal::log& wal, uint64_t from) {
  auto reader = wal.read_from(from);
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

std::string payload(uint64_t n, size_t size) {
  return std::string(size, static_cast<char>('a' + n % 26));
}

// Puts `bytes` at `dir/name`, synced unless `durable` is false (real fsyncs
// would dominate the every-offset test on the posix file system).
void install(file_system& fs, const std::string& dir, const std::string& name,
             const std::string& bytes, bool durable = true) {
  CAF_REQUIRE(fs.create_directories(dir).ok());
  auto path = join_path(dir, name);
  (void)fs.remove(path);
  auto created = fs.open(path, open_mode::create_new);
  CAF_REQUIRE(created.ok());
  CAF_REQUIRE((*created)->append(bytes.data(), bytes.size()).ok());
  if (!durable) return;
  CAF_REQUIRE((*created)->sync().ok());
  CAF_REQUIRE(fs.sync_dir(dir).ok());
}

struct raw_record {
  uint64_t sequence;
  uint8_t flags;
  std::string payload;
};

std::string raw_segment(uint64_t first, const std::vector<raw_record>& records) {
  std::string out(segment_header_bytes, '\0');
  encode_segment_header(first, out.data());
  for (const auto& r : records) {
    std::string framed(encoded_record_bytes(r.payload.size()), '\0');
    encode_record(framed.data(), r.sequence, r.flags, r.payload);
    out += framed;
  }
  return out;
}

constexpr uint8_t data_commit = make_flags(record_type::data, true);
constexpr uint8_t data_only = make_flags(record_type::data, false);

// A log written under sync `always`: one sealed segment and a last segment
// holding transactions of 1..3 records. `ends` maps the end offset of each
// transaction in the last segment (the file size when its append returned)
// to its last sequence.
struct sample_log {
  memory_file_system fs{3};
  files contents;
  std::string last_name;
  uint64_t sealed_last = 0;
  std::map<uint64_t, uint64_t> ends;
  std::vector<std::string> payloads;  // index = sequence - 1

  sample_log() {
    options opts;
    opts.dir = "/wal";
    opts.fs = &fs;
    opts.sync = sync_policy::always();
    opts.segment_bytes = 4096;
    auto wal = wal::log::open(opts);
    CAF_REQUIRE(wal.ok());
    uint64_t n = 0;
    while ((*wal)->stats().rolls == 0) append(**wal, n, 1, 300);
    for (size_t t = 0; t < 6; ++t) append(**wal, n, 1 + t % 3, t * 7);
    auto listed = fs.list("/wal");
    CAF_REQUIRE(listed.ok());
    for (const auto& name : *listed) contents[name] = *fs.contents("/wal/" + name);
    last_name = contents.rbegin()->first;
    sealed_last = *parse_segment_file_name(last_name) - 1;
    CAF_REQUIRE_EQUAL(contents.size(), 2u);
  }

  void append(wal::log& wal, uint64_t& n, size_t records, size_t size) {
    std::vector<std::string> storage;
    for (size_t i = 0; i < records; ++i) storage.push_back(payload(n + i + 1, size + i));
    n += records;
    std::vector<std::string_view> txn(storage.begin(), storage.end());
    auto written = wal.append(txn);
    CAF_REQUIRE(written.ok());
    payloads.insert(payloads.end(), storage.begin(), storage.end());
    if (wal.stats().rolls == 0) return;
    auto listed = fs.list("/wal");
    CAF_REQUIRE(listed.ok());
    std::string newest = *std::max_element(listed->begin(), listed->end());
    ends[fs.contents("/wal/" + newest)->size()] = written->last;
  }

  // A fresh file system holding the sealed segment and the first `cut`
  // bytes of the last one.
  void install_cut(file_system& target, const std::string& dir, size_t cut,
                   bool durable = true) const {
    for (const auto& [name, bytes] : contents)
      install(target, dir, name, name == last_name ? bytes.substr(0, cut) : bytes, durable);
  }

  // The last sequence a recovery of a cut at `cut` must keep.
  uint64_t expected_last(size_t cut) const {
    uint64_t last = sealed_last;
    for (const auto& [end, sequence] : ends)
      if (end <= cut) last = sequence;
    return last;
  }
};

// Opens the cut log, checks what survived and that numbering continues.
void check_recovered_cut(const sample_log& sample, file_system& fs, const std::string& dir,
                         size_t cut) {
  options opts;
  opts.dir = dir;
  opts.fs = &fs;
  opts.sync = sync_policy::none();
  uint64_t expected = sample.expected_last(cut);
  {
    auto wal = wal::log::open(opts);
    CAF_REQUIRE(wal.ok());
    CAF_CHECK_EQUAL((*wal)->last_sequence(), expected);
    const auto& report = (*wal)->recovery();
    bool at_boundary = cut == segment_header_bytes || sample.ends.count(cut) != 0;
    CAF_CHECK_EQUAL(report.truncated(), !at_boundary);
    if (report.truncated()) {
      uint64_t kept = cut < segment_header_bytes ? segment_header_bytes : report.truncated_to;
      CAF_CHECK_EQUAL(report.dropped_bytes, cut < segment_header_bytes ? cut : cut - kept);
    }
    auto records = read_all(**wal, 1);
    CAF_REQUIRE_EQUAL(records.size(), expected);
    for (uint64_t seq = 1; seq <= expected; ++seq) {
      CAF_CHECK_EQUAL(records[seq - 1].first, seq);
      CAF_CHECK(records[seq - 1].second == sample.payloads[seq - 1]);
    }
    auto next = (*wal)->append("after recovery");
    CAF_REQUIRE(next.ok());
    CAF_CHECK_EQUAL(next->first, expected + 1);
  }
  auto again = wal::log::open(opts);
  CAF_REQUIRE(again.ok());
  CAF_CHECK_EQUAL((*again)->last_sequence(), expected + 1);
  CAF_CHECK(!(*again)->recovery().truncated());
}

struct fixture : testing::memory_wal_fixture {
  fixture() : memory_wal_fixture(11, sync_policy::always(), 4096) {}

  std::string path(uint64_t first) const { return "/wal/" + segment_file_name(first); }

  // The segment file names, oldest first.
  std::vector<std::string> segment_names() const {
    auto listed = fs.list("/wal");
    CAF_REQUIRE(listed.ok());
    std::vector<std::string> names = std::move(*listed);
    std::sort(names.begin(), names.end());
    return names;
  }
  uint64_t newest_first() const { return *parse_segment_file_name(segment_names().back()); }

  // Two sealed segments of 7 records and an active one of 4; transactions
  // of one 500-byte record.
  void three_segments() {
    auto wal = wal::log::open(opts);
    CAF_REQUIRE(wal.ok());
    uint64_t n = 0;
    while ((*wal)->stats().rolls < 2) CAF_REQUIRE((*wal)->append(payload(++n, 500)).ok());
    for (int i = 0; i < 3; ++i) CAF_REQUIRE((*wal)->append(payload(++n, 500)).ok());
    CAF_REQUIRE_EQUAL(n, 18u);
    CAF_REQUIRE_EQUAL(newest_first(), 15u);
  }
};

}  // namespace

CAF_TEST(truncating the last segment at every byte offset keeps every whole transaction) {
  sample_log sample;
  const size_t size = sample.contents.at(sample.last_name).size();
  CAF_REQUIRE_GREATER(sample.ends.size(), 5u);
  for (size_t cut = 0; cut <= size; ++cut) {
    memory_file_system fs{cut};
    sample.install_cut(fs, "/wal", cut);
    check_recovered_cut(sample, fs, "/wal", cut);
  }
}

CAF_TEST(truncating at every byte offset on the posix file system) {
  sample_log sample;
  const size_t size = sample.contents.at(sample.last_name).size();
  char pattern[] = "/tmp/walrus-wal-recovery-XXXXXX";
  CAF_REQUIRE(::mkdtemp(pattern) != nullptr);
  std::string root = pattern;
  for (size_t cut = 0; cut <= size; ++cut) {
    std::string dir = root + "/cut";
    std::filesystem::remove_all(dir);
    sample.install_cut(posix_file_system(), dir, cut, false);
    check_recovered_cut(sample, posix_file_system(), dir, cut);
  }
  std::filesystem::remove_all(root);
}

CAF_TEST_FIXTURE_SCOPE(wal_recovery_tests, fixture)

CAF_TEST(a flipped byte before the tail fails open naming file and offset) {
  three_segments();
  // The second record of the last segment: valid records follow it.
  uint64_t last_first = newest_first();
  uint64_t record_bytes = encoded_record_bytes(500);
  uint64_t offset = segment_header_bytes + record_bytes;
  fs.flip_byte(path(last_first), offset + 30);
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK(opened.error().code() == errc::corruption);
  CAF_CHECK_EQUAL(opened.error().message(),
                  path(last_first) + " offset " + std::to_string(offset) +
                      ": crc mismatch (a valid record follows at offset " +
                      std::to_string(offset + record_bytes) + ", so this is not a torn tail)");
}

CAF_TEST(a flipped byte in a sealed segment fails open even at its last record) {
  three_segments();
  // The last record of the first segment: nothing valid follows in that
  // file, but it is not the last segment, so this is no torn tail.
  auto first = *fs.contents(path(1));
  uint64_t record_bytes = encoded_record_bytes(500);
  uint64_t offset = first.size() - record_bytes;
  fs.flip_byte(path(1), first.size() - 1);
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK(opened.error().code() == errc::corruption);
  CAF_CHECK_EQUAL(opened.error().message(),
                  path(1) + " offset " + std::to_string(offset) + ": crc mismatch");
  // Without the full scan, open succeeds and a cursor finds the damage.
  opts.verify_all_segments = false;
  auto fast = wal::log::open(opts);
  CAF_REQUIRE(fast.ok());
  auto reader = (*fast)->read_from(1);
  CAF_REQUIRE(reader.ok());
  std::vector<record_view> batch;
  status st;
  while ((st = reader->read(batch)).ok() && !batch.empty()) {
  }
  CAF_REQUIRE(!st.ok());
  CAF_CHECK(st.code() == errc::corruption);
  CAF_CHECK_EQUAL(st.message(), path(1) + " offset " + std::to_string(offset) + ": crc mismatch");
}

CAF_TEST(damage in the last record of the last segment is a torn tail) {
  three_segments();
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  uint64_t last = (*wal)->last_sequence();
  std::string last_path = path(newest_first());
  wal->reset();
  auto bytes = *fs.contents(last_path);
  fs.flip_byte(last_path, bytes.size() - 1);
  auto reopened = wal::log::open(opts);
  CAF_REQUIRE(reopened.ok());
  const auto& report = (*reopened)->recovery();
  CAF_CHECK(report.truncated());
  CAF_CHECK_EQUAL(report.tail_file, last_path);
  CAF_CHECK_EQUAL(report.dropped_bytes, encoded_record_bytes(500));
  CAF_CHECK_EQUAL(
      report.tail_damage,
      "offset " + std::to_string(bytes.size() - encoded_record_bytes(500)) + ": crc mismatch");
  CAF_CHECK_EQUAL((*reopened)->last_sequence(), last - 1);
}

CAF_TEST(skip mode sets aside a damaged middle segment and reports the loss) {
  three_segments();
  auto segments = segment_names();
  CAF_REQUIRE_EQUAL(segments.size(), 3u);
  uint64_t second = *parse_segment_file_name(segments[1]);
  uint64_t third = *parse_segment_file_name(segments[2]);
  fs.flip_byte(path(second), segment_header_bytes + 20);
  CAF_CHECK(!wal::log::open(opts).ok());
  opts.recovery = recovery_mode::skip_damaged_segments;
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  const auto& report = (*wal)->recovery();
  CAF_CHECK(report.lost_data());
  CAF_CHECK_EQUAL(report.lost_first, 1u);
  CAF_CHECK_EQUAL(report.lost_last, third - 1);
  CAF_REQUIRE_EQUAL(report.skipped_files.size(), 2u);
  CAF_CHECK_EQUAL(report.skipped_files[1], path(second) + ".skipped");
  CAF_CHECK(fs.exists(path(second) + ".skipped"));
  CAF_REQUIRE_EQUAL(report.damage.size(), 1u);
  CAF_CHECK_EQUAL(report.damage[0],
                  path(second) + " offset " + std::to_string(segment_header_bytes) +
                      ": crc mismatch (a valid record follows at offset " +
                      std::to_string(segment_header_bytes + encoded_record_bytes(500)) +
                      ", so this is not a torn tail)");
  CAF_CHECK_EQUAL((*wal)->first_sequence(), third);
  auto gone = (*wal)->read_from(1);
  CAF_REQUIRE(!gone.ok());
  CAF_CHECK(gone.error().code() == errc::not_retained);
  auto records = read_all(**wal, third);
  CAF_CHECK_EQUAL(records.size(), (*wal)->last_sequence() - third + 1);
  CAF_REQUIRE((*wal)->append("more").ok());
}

CAF_TEST(skip mode never reuses sequences of a damaged last segment) {
  three_segments();
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  uint64_t last = (*wal)->last_sequence();
  wal->reset();
  uint64_t active = newest_first();
  fs.flip_byte(path(active), segment_header_bytes + 5);  // first record, others follow
  opts.recovery = recovery_mode::skip_damaged_segments;
  auto reopened = wal::log::open(opts);
  CAF_REQUIRE(reopened.ok());
  CAF_CHECK_EQUAL((*reopened)->recovery().lost_last, last);
  CAF_CHECK_EQUAL((*reopened)->first_sequence(), last + 1);
  auto next = (*reopened)->append("fresh");
  CAF_REQUIRE(next.ok());
  CAF_CHECK_EQUAL(next->first, last + 1);
}

CAF_TEST(a missing middle segment is a continuity error) {
  three_segments();
  auto segments = segment_names();
  CAF_REQUIRE(fs.remove("/wal/" + segments[1]).ok());
  uint64_t third = *parse_segment_file_name(segments[2]);
  uint64_t second = *parse_segment_file_name(segments[1]);
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK(opened.error().code() == errc::corruption);
  CAF_CHECK_EQUAL(opened.error().message(), path(third) + " offset 0: segment starts at sequence " +
                                                std::to_string(third) + ", expected " +
                                                std::to_string(second) + " (" + segments[0] +
                                                " ends at " + std::to_string(second - 1) + ")");
}

CAF_TEST(a header that disagrees with its file name is corruption) {
  install(fs, "/wal", segment_file_name(1), raw_segment(1, {{1, data_commit, "x"}}));
  install(fs, "/wal", segment_file_name(2), raw_segment(3, {{3, data_commit, "y"}}));
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK_EQUAL(opened.error().message(),
                  path(2) +
                      " offset 0: segment header says first sequence 3, the file name "
                      "says 2");
}

CAF_TEST(ignorable unknown records are skipped and unknown ones are corruption) {
  uint8_t ignorable = static_cast<uint8_t>((9 << type_shift) | flag_ignorable);
  install(fs, "/wal", segment_file_name(1),
          raw_segment(1, {{1, data_only, "one"},
                          {2, ignorable, "future"},
                          {3, data_commit, "three"},
                          {4, static_cast<uint8_t>(ignorable | flag_commit), "marker"}}));
  {
    auto wal = wal::log::open(opts);
    CAF_REQUIRE(wal.ok());
    CAF_CHECK_EQUAL((*wal)->last_sequence(), 4u);
    auto records = read_all(**wal, 1);
    CAF_REQUIRE_EQUAL(records.size(), 2u);
    CAF_CHECK_EQUAL(records[0].second, "one");
    CAF_CHECK_EQUAL(records[1].second, "three");
    auto next = (*wal)->append("five");
    CAF_REQUIRE(next.ok());
    CAF_CHECK_EQUAL(next->first, 5u);
  }
  uint8_t unknown = static_cast<uint8_t>(9 << type_shift);
  auto bad = raw_segment(1, {{1, data_commit, "one"},
                             {2, static_cast<uint8_t>(unknown | flag_commit), "future"},
                             {3, data_commit, "three"}});
  install(fs, "/wal", segment_file_name(1), bad);
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK_EQUAL(opened.error().message(), path(1) + " offset 40: invalid or unknown record type");
}

CAF_TEST(a segment of a newer format version is refused) {
  auto bytes = raw_segment(1, {{1, data_commit, "x"}});
  put_le<uint16_t>(bytes.data() + 4, 2);
  put_le<uint32_t>(bytes.data() + 16, crc32c::value(bytes.data(), 16));
  install(fs, "/wal", segment_file_name(1), bytes);
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK(opened.error().code() == errc::version_mismatch);
  CAF_CHECK_EQUAL(opened.error().message(),
                  path(1) +
                      " offset 0: segment header: unsupported format version 2, this "
                      "build reads version 1");
}

CAF_TEST(an unfinished transaction at the end of the log is dropped whole) {
  install(fs, "/wal", segment_file_name(1),
          raw_segment(1, {{1, data_commit, "one"}, {2, data_only, "two"}, {3, data_only, "3"}}));
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  const auto& report = (*wal)->recovery();
  CAF_CHECK(report.truncated());
  CAF_CHECK_EQUAL(report.dropped_records, 2u);
  CAF_CHECK_EQUAL(report.dropped_bytes, 2 * record_header_bytes + 4);
  CAF_CHECK_EQUAL(report.tail_damage, "unfinished transaction at end of file");
  CAF_CHECK_EQUAL((*wal)->last_sequence(), 1u);
  CAF_CHECK_EQUAL(read_all(**wal, 1).size(), 1u);
  auto next = (*wal)->append("two again");
  CAF_REQUIRE(next.ok());
  CAF_CHECK_EQUAL(next->first, 2u);
}

CAF_TEST(a sealed segment that ends inside a transaction is corruption) {
  install(fs, "/wal", segment_file_name(1),
          raw_segment(1, {{1, data_commit, "one"}, {2, data_only, "two"}}));
  install(fs, "/wal", segment_file_name(3), raw_segment(3, {{3, data_commit, "three"}}));
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(!opened.ok());
  CAF_CHECK_EQUAL(opened.error().message(),
                  path(1) +
                      " offset 40: segment ends inside a transaction (sequences 2..2 "
                      "have no commit)");
}

CAF_TEST(a last segment torn inside its header starts over) {
  install(fs, "/wal", segment_file_name(1), raw_segment(1, {{1, data_commit, "one"}}));
  install(fs, "/wal", segment_file_name(2), raw_segment(2, {}).substr(0, 7));
  auto wal = wal::log::open(opts);
  CAF_REQUIRE(wal.ok());
  CAF_CHECK(wal->get()->recovery().truncated());
  CAF_CHECK_EQUAL((*wal)->recovery().dropped_bytes, 7u);
  CAF_CHECK_EQUAL((*wal)->last_sequence(), 1u);
  CAF_CHECK_EQUAL(fs.contents(path(2))->size(), segment_header_bytes);
  auto next = (*wal)->append("two");
  CAF_REQUIRE(next.ok());
  CAF_CHECK_EQUAL(next->first, 2u);
}

CAF_TEST_FIXTURE_SCOPE_END()
