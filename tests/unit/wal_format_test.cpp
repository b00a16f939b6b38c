#define CAF_SUITE wal_format
#include "caf/test/unit_test.hpp"

#include <cstring>
#include <string>

#include "base/crc32c.hpp"
#include "wal/format.hpp"
#include "wal/sync_policy.hpp"

using namespace walrus;
using namespace walrus::wal;

namespace {

std::string encode(uint64_t sequence, uint8_t flags, std::string_view payload) {
  std::string out(encoded_record_bytes(payload.size()), '\0');
  char* end = encode_record(out.data(), sequence, flags, payload);
  CAF_REQUIRE_EQUAL(static_cast<size_t>(end - out.data()), out.size());
  return out;
}

}  // namespace

CAF_TEST(segment file names are 20 zero padded digits and.wal) {
  CAF_CHECK_EQUAL(segment_file_name(1), "00000000000000000001.wal");
  CAF_CHECK_EQUAL(segment_file_name(18446744073709551615u), "18446744073709551615.wal");
  auto parsed = parse_segment_file_name("00000000000000004711.wal");
  CAF_REQUIRE(parsed.has_value());
  CAF_CHECK_EQUAL(*parsed, 4711u);
  CAF_CHECK(!parse_segment_file_name("00000000000000000000.wal"));  // 0 is "nothing"
  CAF_CHECK(!parse_segment_file_name("0000000000000000001.wal"));   // 19 digits
  CAF_CHECK(!parse_segment_file_name("00000000000000000001.wal.skipped"));
  CAF_CHECK(!parse_segment_file_name("0000000000000000000x.wal"));
  CAF_CHECK(!parse_segment_file_name("99999999999999999999.wal"));  // overflows u64
}

CAF_TEST(segment header round trips and rejects damage) {
  char header[segment_header_bytes];
  encode_segment_header(42, header);
  CAF_CHECK_EQUAL(std::string(header, 4), "WLOG");
  CAF_CHECK_EQUAL(get_le<uint16_t>(header + 4), format_version);
  CAF_CHECK_EQUAL(get_le<uint32_t>(header + 16), crc32c::value(header, 16));
  auto first = decode_segment_header(header);
  CAF_REQUIRE(first.ok());
  CAF_CHECK_EQUAL(*first, 42u);
  for (size_t i = 0; i < segment_header_bytes; ++i) {
    char damaged[segment_header_bytes];
    std::memcpy(damaged, header, sizeof(damaged));
    damaged[i] ^= 0x10;
    CAF_CHECK(!decode_segment_header(damaged).ok());
  }
}

CAF_TEST(a newer segment version is a version mismatch) {
  char header[segment_header_bytes];
  encode_segment_header(1, header);
  put_le<uint16_t>(header + 4, 2);
  put_le<uint32_t>(header + 16, crc32c::value(header, 16));
  auto first = decode_segment_header(header);
  CAF_REQUIRE(!first.ok());
  CAF_CHECK(first.error().code() == errc::version_mismatch);
  CAF_CHECK_EQUAL(first.error().message(),
                  "segment header: unsupported format version 2, this build reads version 1");
}

CAF_TEST(records follow the grammar byte for byte) {
  auto bytes = encode(0x0102030405060708u, make_flags(record_type::data, true), "abc");
  CAF_REQUIRE_EQUAL(bytes.size(), 20u);
  CAF_CHECK_EQUAL(get_le<uint32_t>(bytes.data() + 4), 3u);                  // length
  CAF_CHECK_EQUAL(static_cast<int>(static_cast<uint8_t>(bytes[8])), 0x05);  // type 1, commit
  CAF_CHECK_EQUAL(get_le<uint64_t>(bytes.data() + 9), 0x0102030405060708u);
  CAF_CHECK_EQUAL(bytes.substr(17), "abc");
  // The CRC covers everything after the crc field.
  CAF_CHECK_EQUAL(get_le<uint32_t>(bytes.data()), crc32c::value(bytes.data() + 4, 16));
  CAF_CHECK_EQUAL(static_cast<int>(make_flags(record_type::data, false, true)), 0x06);
}

CAF_TEST(decoding returns the record and its size) {
  auto bytes = encode(7, make_flags(record_type::data, false), "payload") + "trailing";
  record_view view;
  size_t size = 0;
  CAF_REQUIRE(decode_record(bytes.data(), bytes.size(), view, size) == decode_outcome::ok);
  CAF_CHECK_EQUAL(size, 24u);
  CAF_CHECK_EQUAL(view.sequence, 7u);
  CAF_CHECK(!view.commit());
  CAF_CHECK_EQUAL(static_cast<int>(view.type()), 1);
  CAF_CHECK_EQUAL(view.payload, "payload");
  auto empty = encode(8, make_flags(record_type::data, true), "");
  CAF_REQUIRE(decode_record(empty.data(), empty.size(), view, size) == decode_outcome::ok);
  CAF_CHECK_EQUAL(size, record_header_bytes);
  CAF_CHECK(view.payload.empty());
  CAF_CHECK(view.commit());
}

CAF_TEST(every flipped bit and every cut is detected) {
  auto bytes = encode(99, make_flags(record_type::data, true), "the quick brown fox");
  record_view view;
  size_t size = 0;
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    CAF_CHECK(decode_record(bytes.data(), cut, view, size) == decode_outcome::incomplete);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      CAF_CHECK(decode_record(damaged.data(), damaged.size(), view, size) != decode_outcome::ok);
    }
  }
}

CAF_TEST(unknown types are corruption unless ignorable) {
  record_view view;
  size_t size = 0;
  auto unknown = encode(5, static_cast<uint8_t>((9 << type_shift) | flag_commit), "x");
  CAF_CHECK(decode_record(unknown.data(), unknown.size(), view, size) == decode_outcome::bad_type);
  auto ignorable =
      encode(5, static_cast<uint8_t>((9 << type_shift) | flag_commit | flag_ignorable), "x");
  CAF_REQUIRE(decode_record(ignorable.data(), ignorable.size(), view, size) == decode_outcome::ok);
  CAF_CHECK_EQUAL(static_cast<int>(view.type()), 9);
  CAF_CHECK(!is_known_type(view.type()));
  auto type_zero = encode(5, flag_commit | flag_ignorable, "x");
  CAF_CHECK(decode_record(type_zero.data(), type_zero.size(), view, size) ==
            decode_outcome::bad_type);
  std::string huge = encode(5, make_flags(record_type::data, true), "");
  put_le<uint32_t>(huge.data() + 4, max_payload_bytes + 1);
  CAF_CHECK(decode_record(huge.data(), huge.size(), view, size) == decode_outcome::bad_length);
}

CAF_TEST(sync policies parse and print) {
  for (const char* text : {"always", "group", "none", "interval:10", "interval:3600000"}) {
    auto policy = sync_policy::parse(text);
    CAF_REQUIRE(policy.ok());
    CAF_CHECK_EQUAL(policy->to_string(), text);
  }
  CAF_CHECK(*sync_policy::parse("interval:25") ==
            sync_policy::every(std::chrono::milliseconds{25}));
  CAF_CHECK(sync_policy::parse("group")->mode == sync_policy::kind::group);
  for (const char* bad : {"", "Always", "interval", "interval:", "interval:0", "interval:-1",
                          "interval:3600001", "interval:10ms", "sometimes"}) {
    auto policy = sync_policy::parse(bad);
    CAF_CHECK(!policy.ok());
    if (!policy.ok()) CAF_CHECK(policy.error().code() == errc::invalid_argument);
  }
  auto unknown = sync_policy::parse("sometimes");
  CAF_REQUIRE(!unknown.ok());
  CAF_CHECK_EQUAL(unknown.error().message(),
                  "sync policy \"sometimes\": unknown policy (expected always, group, none or "
                  "interval:<ms>)");
}
