#define CAF_SUITE codec
#include "caf/test/unit_test.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.hpp"

using namespace walrus;
using namespace walrus::codec;

namespace {

// Batches as the batcher builds them: varint length + a key/value write.
std::string wal_like(size_t min_bytes, uint32_t seed) {
  std::mt19937 rng{seed};
  std::string out;
  for (uint32_t i = 0; out.size() < min_bytes; ++i) {
    auto user = rng() % 100000;
    std::string payload = "SET user:" + std::to_string(100000 + user) + " {\"name\":\"user" +
                          std::to_string(user) + "\",\"balance\":" + std::to_string(rng() % 10000) +
                          ",\"seq\":" + std::to_string(i) + ",\"region\":\"eu-west-1\"}";
    out.push_back(static_cast<char>(payload.size()));  // < 128: a one-byte varint
    out += payload;
  }
  return out;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng{seed};
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

std::unique_ptr<block_codec> make(const char* config) {
  auto parsed = parse_codec_config(config);
  CAF_REQUIRE(parsed.ok());
  auto made = make_codec(*parsed);
  CAF_REQUIRE(made.ok());
  return std::move(made).value();
}

// Compresses and decompresses `input`; true when the round trip is exact.
bool round_trips(block_codec& codec, const std::string& input) {
  std::string compressed;
  std::string restored;
  if (!codec.compress(input, compressed).ok()) return false;
  if (compressed.size() > codec.compress_bound(input.size())) return false;
  auto st = codec.decompress(compressed, input.size(), input.size(), restored);
  if (!st.ok()) CAF_MESSAGE(to_string(codec.config()) << ": " << st.to_string());
  return st.ok() && restored == input;
}

const char* const all_configs[] = {"none", "snappy", "zstd:-1", "zstd:1", "zstd:3", "zstd:19"};

}  // namespace

CAF_TEST(codec ids keep their wire values and names) {
  CAF_CHECK_EQUAL(static_cast<int>(codec_id::none), 0);
  CAF_CHECK_EQUAL(static_cast<int>(codec_id::snappy), 1);
  CAF_CHECK_EQUAL(static_cast<int>(codec_id::zstd), 2);
  for (uint32_t wire = 0; wire <= 2; ++wire) {
    auto id = codec_id_from_wire(wire);
    CAF_REQUIRE(id.ok());
    CAF_CHECK_EQUAL(static_cast<uint32_t>(*id), wire);
  }
  CAF_CHECK_EQUAL(std::string(to_string(codec_id::snappy)), "snappy");
  CAF_CHECK_EQUAL(std::string(to_string(static_cast<codec_id>(9))), "unknown");
}

CAF_TEST(unknown codec ids are unsupported_codec) {
  for (uint32_t wire : {3u, 7u, 255u, 0xFFFFFFFFu}) {
    auto id = codec_id_from_wire(wire);
    CAF_REQUIRE(!id.ok());
    CAF_CHECK(id.error().code() == errc::unsupported_codec);
    CAF_CHECK_EQUAL(id.error().message(), "unknown codec id " + std::to_string(wire));
  }
  auto made = make_codec(static_cast<codec_id>(3));
  CAF_REQUIRE(!made.ok());
  CAF_CHECK(made.error().code() == errc::unsupported_codec);
  CAF_CHECK_EQUAL(made.error().message(), "unknown codec id 3");
}

CAF_TEST(codec configs parse and print) {
  for (auto text : {"none", "snappy", "zstd:1", "zstd:5", "zstd:-3", "zstd:19"}) {
    auto parsed = parse_codec_config(text);
    CAF_REQUIRE(parsed.ok());
    CAF_CHECK_EQUAL(to_string(*parsed), text);
  }
  auto plain = parse_codec_config("zstd");
  CAF_REQUIRE(plain.ok());
  CAF_CHECK_EQUAL(plain->level, default_zstd_level);
  auto unknown = parse_codec_config("lz4");
  CAF_REQUIRE(!unknown.ok());
  CAF_CHECK(unknown.error().code() == errc::unsupported_codec);
  for (auto bad : {"zstd:", "zstd:0", "zstd:20", "zstd:-8", "zstd:x", "zstd:5x", "snappy:1"}) {
    auto parsed = parse_codec_config(bad);
    CAF_REQUIRE(!parsed.ok());
    CAF_CHECK(parsed.error().code() == errc::invalid_argument);
  }
}

CAF_TEST(make_codec builds the codec it is asked for) {
  auto zstd5 = make_codec(codec_id::zstd, 5);
  CAF_REQUIRE(zstd5.ok());
  CAF_CHECK((*zstd5)->id() == codec_id::zstd);
  CAF_CHECK_EQUAL((*zstd5)->level(), 5);
  CAF_CHECK((*make_codec(codec_id::snappy))->id() == codec_id::snappy);
  CAF_CHECK((*make_codec(codec_id::none))->id() == codec_id::none);
  for (int bad : {0, 20, -8}) {
    auto made = make_codec(codec_id::zstd, bad);
    CAF_REQUIRE(!made.ok());
    CAF_CHECK(made.error().code() == errc::invalid_argument);
  }
}

CAF_TEST(every codec round trips small inputs) {
  for (auto config : all_configs) {
    auto codec = make(config);
    for (const std::string& input : {std::string{}, std::string(1, '\0'), std::string("x"),
                                     std::string("SET user:000123 42")}) {
      CAF_CHECK(round_trips(*codec, input));
    }
  }
}

CAF_TEST(every codec round trips wal - like and incompressible batches) {
  auto wal = wal_like(64 * 1024, 1);
  auto noise = random_bytes(64 * 1024, 2);
  for (auto config : all_configs) {
    auto codec = make(config);
    CAF_CHECK(round_trips(*codec, wal));
    CAF_CHECK(round_trips(*codec, noise));
  }
}

CAF_TEST(every codec round trips several mebibytes) {
  auto wal = wal_like(6 * 1024 * 1024, 3);
  auto noise = random_bytes(3 * 1024 * 1024, 4);
  for (auto config : {"none", "snappy", "zstd:-1", "zstd:1", "zstd:3"}) {
    auto codec = make(config);
    CAF_CHECK(round_trips(*codec, wal));
    CAF_CHECK(round_trips(*codec, noise));
  }
}

CAF_TEST(compressing codecs shrink wal - like batches) {
  auto wal = wal_like(256 * 1024, 5);
  for (auto config : {"snappy", "zstd:1", "zstd:3"}) {
    auto codec = make(config);
    std::string compressed;
    CAF_REQUIRE(codec->compress(wal, compressed).ok());
    CAF_MESSAGE(config << ": " << wal.size() << " -> " << compressed.size());
    CAF_CHECK_LESS(compressed.size() * 2, wal.size());
  }
}

CAF_TEST(one codec object serves many batches and reuses the output buffers) {
  for (auto config : {"none", "snappy", "zstd:1"}) {
    auto codec = make(config);
    std::string compressed;
    std::string restored;
    for (uint32_t batch = 0; batch < 20; ++batch) {
      auto input = wal_like(32 * 1024, batch);
      CAF_REQUIRE(codec->compress(input, compressed).ok());
      CAF_REQUIRE(codec->decompress(compressed, input.size(), 1 << 20, restored).ok());
      CAF_CHECK(restored == input);
    }
    // Same size again: no reallocation of either buffer.
    auto input = wal_like(32 * 1024, 0);
    CAF_REQUIRE(codec->compress(input, compressed).ok());
    CAF_REQUIRE(codec->decompress(compressed, input.size(), 1 << 20, restored).ok());
    const char* compressed_at = compressed.data();
    const char* restored_at = restored.data();
    CAF_REQUIRE(codec->compress(input, compressed).ok());
    CAF_REQUIRE(codec->decompress(compressed, input.size(), 1 << 20, restored).ok());
    CAF_CHECK(compressed.data() == compressed_at);
    CAF_CHECK(restored.data() == restored_at);
  }
}

CAF_TEST(decompression insists on the expected size) {
  auto input = wal_like(10000, 6);
  input.resize(10000);
  for (auto config : {"none", "snappy", "zstd:1"}) {
    auto codec = make(config);
    std::string compressed;
    std::string restored;
    CAF_REQUIRE(codec->compress(input, compressed).ok());
    // The stated size is one byte short: producing more is refused.
    auto st = codec->decompress(compressed, input.size() - 1, 1 << 20, restored);
    CAF_CHECK(st.code() == errc::size_limit_exceeded);
    CAF_CHECK(restored.empty());
    // The stated size is one byte long: the output is too short.
    st = codec->decompress(compressed, input.size() + 1, 1 << 20, restored);
    CAF_CHECK(st.code() == errc::decompression_failed);
    CAF_CHECK_EQUAL(st.message(), std::string(config).substr(0, std::string(config).find(':')) +
                                      ": produced 10000 bytes, expected 10001");
    // An expected size above the limit is refused before decompressing.
    st = codec->decompress(compressed, input.size(), input.size() - 1, restored);
    CAF_CHECK(st.code() == errc::size_limit_exceeded);
    // Unknown expected size: only the limit applies.
    CAF_CHECK(codec->decompress(compressed, block_codec::unknown_size, 1 << 20, restored).ok());
    CAF_CHECK(restored == input);
    st = codec->decompress(compressed, block_codec::unknown_size, input.size() - 1, restored);
    CAF_CHECK(st.code() == errc::size_limit_exceeded);
  }
}

CAF_TEST(negotiation picks the first codec of the primary the replica supports) {
  std::vector<codec_id> primary{codec_id::zstd, codec_id::snappy, codec_id::none};
  CAF_CHECK(negotiate_codec(primary, {codec_id::snappy, codec_id::zstd}) == codec_id::zstd);
  CAF_CHECK(negotiate_codec(primary, {codec_id::snappy}) == codec_id::snappy);
  CAF_CHECK(negotiate_codec(primary, {}) == codec_id::none);
  CAF_CHECK(negotiate_codec({codec_id::zstd}, {codec_id::snappy}) == codec_id::none);
  CAF_CHECK(negotiate_codec({}, {codec_id::zstd}) == codec_id::none);
}
