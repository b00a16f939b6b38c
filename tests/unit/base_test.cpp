#define CAF_SUITE base
#include "caf/test/unit_test.hpp"

#include <cstdint>
#include <string>
#include <string_view>

#include "base/crc32c.hpp"
#include "base/status.hpp"
#include "base/varint.hpp"

using namespace walrus;

CAF_TEST(crc32c matches the published check values) {
  // RFC 3720 B.4 and the usual "123456789" check value.
  CAF_CHECK_EQUAL(crc32c::value("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  CAF_CHECK_EQUAL(crc32c::value(zeros), 0x8A9136AAu);
  std::string ones(32, '\xFF');
  CAF_CHECK_EQUAL(crc32c::value(ones), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  CAF_CHECK_EQUAL(crc32c::value(ascending), 0x46DD794Eu);
}

CAF_TEST(crc32c hardware and portable paths agree at every length and alignment) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (size_t offset = 0; offset < 9; ++offset)
    for (size_t n = 0; n + offset <= data.size(); n += 7)
      CAF_CHECK_EQUAL(crc32c::extend(0, data.data() + offset, n),
                      crc32c::extend_portable(0, data.data() + offset, n));
}

CAF_TEST(crc32c paths agree on inputs of many interleaved stripes) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 131 + (i >> 7)));
  for (size_t n : {size_t{12287}, size_t{12288}, size_t{12289}, size_t{16401}, size_t{40000},
                   size_t{65536}, size_t{99999}})
    for (size_t offset : {size_t{0}, size_t{1}, size_t{3}})
      CAF_CHECK_EQUAL(crc32c::extend(0x1234, data.data() + offset, n - offset),
                      crc32c::extend_portable(0x1234, data.data() + offset, n - offset));
}

CAF_TEST(crc32c extends across split inputs) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  auto whole = crc32c::value(data);
  for (size_t split = 0; split <= data.size(); ++split) {
    auto first = crc32c::value(data.data(), split);
    CAF_CHECK_EQUAL(crc32c::extend(first, data.data() + split, data.size() - split), whole);
  }
}

CAF_TEST(status carries code and message) {
  status fine;
  CAF_CHECK(fine.ok());
  CAF_CHECK_EQUAL(fine.to_string(), "ok");
  status bad{errc::corruption, "segment 00000000000000000001.wal offset 42: crc mismatch"};
  CAF_CHECK(!bad.ok());
  CAF_CHECK(bad.code() == errc::corruption);
  CAF_CHECK_EQUAL(bad.to_string(),
                  "corruption: segment 00000000000000000001.wal offset 42: crc mismatch");
}

CAF_TEST(result holds a value or an error) {
  result<int> good = 42;
  CAF_REQUIRE(good.ok());
  CAF_CHECK_EQUAL(*good, 42);
  result<int> bad = status{errc::not_retained, "sequence 3 is no longer retained"};
  CAF_REQUIRE(!bad.ok());
  CAF_CHECK(bad.error().code() == errc::not_retained);
}

CAF_TEST(varints round trip and refuse what runs past the end or 64 bits) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300},
                     uint64_t{1} << 35, UINT64_MAX}) {
    std::string out = "x";
    put_varint(out, v);
    CAF_CHECK_EQUAL(out.size(), 1 + varint_size(v));
    size_t pos = 1;
    uint64_t back = 0;
    CAF_CHECK(get_varint(out, pos, back));
    CAF_CHECK_EQUAL(back, v);
    CAF_CHECK_EQUAL(pos, out.size());
    // Cut short: refused.
    pos = 1;
    CAF_CHECK(!get_varint(std::string_view{out}.substr(0, out.size() - 1), pos, back));
  }
  CAF_CHECK_EQUAL(varint_size(UINT64_MAX), 10u);
  // Ten bytes whose last one carries bits above 64, and eleven bytes: refused.
  size_t pos = 0;
  uint64_t v = 0;
  CAF_CHECK(!get_varint(std::string(9, '\xff') + '\x02', pos, v));
  pos = 0;
  CAF_CHECK(!get_varint(std::string(10, '\x80') + '\x00', pos, v));
}
