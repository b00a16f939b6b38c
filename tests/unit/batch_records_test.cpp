#define CAF_SUITE batch_records
#include "caf/test/unit_test.hpp"

#include <string>
#include <vector>

#include "actors/batch_records.hpp"
#include "tests/support/records.hpp"

using namespace walrus;

namespace {

// A copy: a reference into a temporary status would dangle inside CAF_CHECK.
std::string message_of(const status& st) {
  return st.message();
}

// Batch 5..8 of `part`: records 5 and 6 end transactions unless told.
struct fixture {
  batch b;
  std::vector<std::string> payloads{"five", "six", "seven", "eight"};
  std::vector<bool> commits{false, true, false, true};
  std::vector<wal::record_view> out;

  fixture() {
    b.first_sequence = 5;
    b.last_sequence = 8;
  }

  std::string records(uint64_t first = 5) const {
    return testing::framed_records(first, payloads, commits);
  }

  status check(std::vector<std::string_view> pieces) { return check_batch_records(b, pieces, out); }

  std::string refusal(const std::string& bytes, errc expected) {
    auto st = check({bytes});
    CAF_CHECK(st.code() == expected);
    return st.message();
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(batch_records_tests, fixture)

CAF_TEST(whole records in order pass and are viewed in place) {
  auto bytes = records();
  auto second = wal::encoded_record_bytes(4) + wal::encoded_record_bytes(3);
  for (auto pieces : {std::vector<std::string_view>{bytes},
                      std::vector<std::string_view>{std::string_view{bytes}.substr(0, second),
                                                    std::string_view{bytes}.substr(second)}}) {
    CAF_REQUIRE(check(pieces).ok());
    CAF_REQUIRE_EQUAL(out.size(), 4u);
    for (size_t i = 0; i < out.size(); ++i) {
      CAF_CHECK_EQUAL(out[i].sequence, 5 + i);
      CAF_CHECK_EQUAL(std::string(out[i].payload), payloads[i]);
      CAF_CHECK_EQUAL(out[i].commit(), commits[i]);
    }
    CAF_CHECK(out[0].frame == bytes.data());
    CAF_CHECK(out[3].encoded().data() + out[3].encoded().size() == bytes.data() + bytes.size());
  }
}

CAF_TEST(a damaged record is a checksum mismatch naming it) {
  auto bytes = records();
  bytes[wal::encoded_record_bytes(4) + wal::record_header_bytes] ^= 0x20;
  CAF_CHECK_EQUAL(refusal(bytes, errc::checksum_mismatch), "batch 5..8: record 6: crc32c differs");
}

CAF_TEST(records other than the batch names are malformed) {
  CAF_CHECK_EQUAL(refusal(records(6), errc::malformed_frame),
                  "batch 5..8: record 5: carries sequence 6");
  auto bytes = records();
  CAF_CHECK_EQUAL(refusal(bytes.substr(0, bytes.size() - 1), errc::malformed_frame),
                  "batch 5..8: record 8: cut short");
  payloads.pop_back();
  commits.pop_back();
  commits.back() = true;
  CAF_CHECK_EQUAL(refusal(records(), errc::malformed_frame),
                  "batch 5..8: holds 3 records, expected 4");
  CAF_CHECK_EQUAL(refusal(bytes + records(9), errc::malformed_frame),
                  "batch 5..8: bytes after its last record");
  // Pieces end at record boundaries.
  std::string_view all{bytes};
  CAF_CHECK_EQUAL(message_of(check({all.substr(0, 30), all.substr(30)})),
                  "batch 5..8: record 6: cut short");
}

CAF_TEST(a record of another type is malformed even when ignorable) {
  auto bytes = records();
  // Record 7 rewritten as type 5 with the ignorable bit, with a valid CRC.
  auto at = wal::encoded_record_bytes(4) + wal::encoded_record_bytes(3);
  wal::encode_record(bytes.data() + at, 7,
                     wal::make_flags(static_cast<wal::record_type>(5), false, true), "seven");
  CAF_CHECK_EQUAL(refusal(bytes, errc::malformed_frame),
                  "batch 5..8: record 7: type 5 is not data");
}

CAF_TEST(commit flags must agree with the fragment mark) {
  auto expect = [&](fragment part, std::vector<bool> flags, bool accepted) {
    b.part = part;
    commits = flags;
    auto st = check({records()});
    CAF_CHECK_EQUAL(st.ok(), accepted);
    if (!accepted) CAF_CHECK(st.code() == errc::malformed_frame);
  };
  expect(fragment::none, {false, true, false, true}, true);
  expect(fragment::none, {true, true, true, true}, true);
  expect(fragment::none, {false, true, false, false}, false);  // ends inside a transaction
  expect(fragment::first, {false, false, false, false}, true);
  expect(fragment::first, {false, false, false, true}, false);
  expect(fragment::middle, {false, false, false, false}, true);
  expect(fragment::middle, {false, true, false, false}, false);
  expect(fragment::last, {false, false, false, true}, true);
  expect(fragment::last, {false, true, false, true}, false);
  expect(fragment::last, {false, false, false, false}, false);
  b.part = fragment::last;
  commits = {false, false, true, false};
  CAF_CHECK_EQUAL(message_of(check({records()})),
                  "batch 5..8: record 7: commit flag contradicts the batch's fragment mark");
}

CAF_TEST_FIXTURE_SCOPE_END()
