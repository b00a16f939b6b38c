#define CAF_SUITE entries
#include "caf/test/unit_test.hpp"

#include <string>
#include <vector>

#include "codec/entries.hpp"

using namespace walrus;
using namespace walrus::codec;

namespace {

struct blob {
  std::string entries;
  std::string flags;
  uint64_t count = 0;

  void add(std::string_view payload, bool commit) {
    entries_writer w{entries, flags, count};
    w.add(payload, commit);
    count = w.count();
  }
};

}  // namespace

CAF_TEST(entries round trip with their commit flags) {
  blob b;
  std::vector<std::string> payloads{"", "a", std::string(127, 'x'), std::string(128, 'y'),
                                    std::string(70000, 'z')};
  for (size_t i = 0; i < payloads.size(); ++i) b.add(payloads[i], i % 2 == 1);
  std::vector<entry_view> out;
  CAF_REQUIRE(parse_entries(b.entries, b.flags, b.count, out).ok());
  CAF_REQUIRE_EQUAL(out.size(), payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    CAF_CHECK_EQUAL(std::string(out[i].payload), payloads[i]);
    CAF_CHECK_EQUAL(out[i].commit, i % 2 == 1);
  }
  CAF_CHECK_EQUAL(b.entries.size(), encoded_size(0) + encoded_size(1) + encoded_size(127) +
                                        encoded_size(128) + encoded_size(70000));
}

CAF_TEST(appending blobs shifts the commit bitmap) {
  for (uint64_t left = 0; left < 20; ++left) {
    blob a, b, whole;
    for (uint64_t i = 0; i < left; ++i) {
      a.add(std::to_string(i), i % 3 == 0);
      whole.add(std::to_string(i), i % 3 == 0);
    }
    for (uint64_t i = 0; i < 13; ++i) {
      b.add("b" + std::to_string(i), i % 5 == 4);
      whole.add("b" + std::to_string(i), i % 5 == 4);
    }
    append_entries(a.entries, a.flags, a.count, b.entries, b.flags, b.count);
    CAF_CHECK_EQUAL(a.entries, whole.entries);
    CAF_CHECK_EQUAL(a.flags, whole.flags);
  }
}

CAF_TEST(malformed blobs are errors naming the entry) {
  blob b;
  b.add("hello", true);
  b.add("world", true);
  std::vector<entry_view> out;
  // Too few entries declared: bytes left over.
  auto st = parse_entries(b.entries, std::string(1, '\x03'), 1, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  // Too many declared.
  st = parse_entries(b.entries, std::string(1, '\x03'), 3, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  // Truncated payload.
  st = parse_entries(std::string_view(b.entries).substr(0, b.entries.size() - 1), b.flags, 2, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  CAF_CHECK_EQUAL(st.message(), "entry 1 at offset 7 claims 5 bytes, 4 remain");
  // A varint that never ends.
  st = parse_entries(std::string(8, '\xFF'), std::string(1, '\0'), 1, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  // A count that cannot fit is refused before anything is reserved for it.
  st = parse_entries(b.entries, std::string(1u << 20, '\0'), uint64_t{1} << 23, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  // A bitmap of the wrong size.
  st = parse_entries(b.entries, "", 2, out);
  CAF_CHECK(st.code() == errc::malformed_frame);
  // Every truncation of a valid blob fails cleanly.
  for (size_t n = 0; n < b.entries.size(); ++n)
    CAF_CHECK(!parse_entries(std::string_view(b.entries).substr(0, n), b.flags, 2, out).ok());
}
