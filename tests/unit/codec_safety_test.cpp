// Hostile input for the codecs: decompression bombs, corrupted and truncated
// blocks, garbage. The contract: an error status or output of exactly the
// expected size, never a crash, never an allocation above the limit.
#define CAF_SUITE codec_safety
#include "caf/test/unit_test.hpp"

#include <cstdint>
#include <random>
#include <string>

#include "codec/codec.hpp"

using namespace walrus;
using namespace walrus::codec;

namespace {

constexpr size_t one_mib = 1024 * 1024;

std::unique_ptr<block_codec> make(codec_id id) {
  auto made = make_codec(id, 1);
  CAF_REQUIRE(made.ok());
  return std::move(made).value();
}

// A compressible block of a few KiB with literals, matches and repeats.
std::string sample_block() {
  std::string out;
  for (int i = 0; i < 60; ++i)
    out += "PUT key:" + std::to_string(1000 + i * 7) + " value-" + std::to_string(i % 5) +
           "-abcdefghij\n";
  return out;
}

// zstd frames written by hand (RFC 8878), for shapes our compressor never
// produces: no content size, huge declared sizes.
std::string zstd_frame_header(bool with_content_size, uint64_t content_size) {
  std::string out = "\x28\xB5\x2F\xFD";                // magic, little endian
  out.push_back(with_content_size ? '\xC0' : '\x00');  // FCS field: 8 bytes or none
  out.push_back('\x50');                               // window descriptor: 2^20 bytes
  for (int i = 0; with_content_size && i < 8; ++i)
    out.push_back(static_cast<char>((content_size >> (8 * i)) & 0xFF));
  return out;
}

// An RLE block: `count` (<= 128 KiB) copies of `byte`.
void append_rle_block(std::string& frame, uint32_t count, char byte, bool last) {
  uint32_t header = (count << 3) | (1u << 1) | (last ? 1u : 0u);
  for (int i = 0; i < 3; ++i) frame.push_back(static_cast<char>((header >> (8 * i)) & 0xFF));
  frame.push_back(byte);
}

// A frame without content size that decodes to `blocks` x 128 KiB of 'x'.
std::string zstd_rle_stream(uint32_t blocks) {
  auto frame = zstd_frame_header(false, 0);
  for (uint32_t i = 0; i < blocks; ++i) append_rle_block(frame, 128 * 1024, 'x', i + 1 == blocks);
  return frame;
}

bool refused_as(const status& st, errc code) {
  if (st.code() != code) CAF_MESSAGE("unexpected: " << st.to_string());
  return st.code() == code;
}

// Decompression of damaged input: an error, or exactly the expected size.
bool safe_outcome(const status& st, const std::string& output, size_t expected) {
  if (st.ok()) return output.size() == expected;
  return st.code() == errc::decompression_failed || st.code() == errc::size_limit_exceeded;
}

}  // namespace

CAF_TEST(a zstd frame declaring a huge size is refused before allocating) {
  auto frame = zstd_frame_header(true, uint64_t{1} << 40);  // 1 TiB
  append_rle_block(frame, 100, 'x', true);
  auto codec = make(codec_id::zstd);
  std::string output;
  auto st = codec->decompress(frame, block_codec::unknown_size, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(st.message(),
                  "zstd: input declares 1099511627776 bytes, more than the limit of 1048576 bytes");
  CAF_CHECK_EQUAL(output.capacity(), std::string{}.capacity());
}

CAF_TEST(a real zstd bomb is refused by its declared size) {
  auto codec = make(codec_id::zstd);
  std::string zeros(32 * one_mib, '\0');
  std::string bomb;
  CAF_REQUIRE(codec->compress(zeros, bomb).ok());
  CAF_MESSAGE("32 MiB of zeros compress to " << bomb.size() << " bytes");
  std::string output;
  auto st = codec->decompress(bomb, block_codec::unknown_size, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_LESS(output.capacity(), 4096u);
  // A batch claiming the full size is refused by the limit alone.
  st = codec->decompress(bomb, zeros.size(), one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
}

CAF_TEST(a zstd stream without declared size is bounded while decoding) {
  auto bomb = zstd_rle_stream(1024);  // 4 KiB of input, 128 MiB of output
  auto codec = make(codec_id::zstd);
  std::string output;
  auto st = codec->decompress(bomb, block_codec::unknown_size, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(st.message(),
                  "zstd: input decodes to more than 1048576 bytes, more than the limit of "
                  "1048576 bytes");
  CAF_CHECK_LESS_OR_EQUAL(output.capacity(), 4 * one_mib);
  st = codec->decompress(bomb, one_mib, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
}

CAF_TEST(a zstd stream without declared size decodes within the limit) {
  auto stream = zstd_rle_stream(3);
  auto codec = make(codec_id::zstd);
  std::string output;
  CAF_REQUIRE(codec->decompress(stream, 3 * 128 * 1024, one_mib, output).ok());
  CAF_CHECK(output == std::string(3 * 128 * 1024, 'x'));
  // Exactly at the limit is fine; one byte less is not.
  CAF_CHECK(codec->decompress(stream, block_codec::unknown_size, 3 * 128 * 1024, output).ok());
  auto st = codec->decompress(stream, block_codec::unknown_size, 3 * 128 * 1024 - 1, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  // Bytes after the frame, a second frame, or a legacy/foreign magic: refused.
  st = codec->decompress(stream + stream, block_codec::unknown_size, 8 * one_mib, output);
  CAF_CHECK(refused_as(st, errc::decompression_failed));
  st = codec->decompress("\x27\xB5\x2F\xFD" + stream.substr(4), 3 * 128 * 1024, one_mib, output);
  CAF_CHECK(refused_as(st, errc::decompression_failed));
}

CAF_TEST(a snappy block declaring a huge size is refused before allocating) {
  std::string header_bomb = "\xFF\xFF\xFF\xFF\x0F";  // varint 2^32 - 1
  header_bomb += std::string(64, '\0');
  auto codec = make(codec_id::snappy);
  std::string output;
  auto st = codec->decompress(header_bomb, block_codec::unknown_size, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(st.message(),
                  "snappy: input declares 4294967295 bytes, more than the limit of 1048576 bytes");
  CAF_CHECK_EQUAL(output.capacity(), std::string{}.capacity());
  std::string zeros(16 * one_mib, '\0');
  std::string bomb;
  CAF_REQUIRE(codec->compress(zeros, bomb).ok());
  st = codec->decompress(bomb, block_codec::unknown_size, one_mib, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(output.capacity(), std::string{}.capacity());
}

CAF_TEST(an uncompressed block above the limit is refused) {
  auto codec = make(codec_id::none);
  std::string output;
  auto st = codec->decompress(std::string(2000, 'a'), block_codec::unknown_size, 1000, output);
  CAF_CHECK(refused_as(st, errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(st.message(), "none: input of 2000 bytes, more than the limit of 1000 bytes");
}

CAF_TEST(flipped bytes at every position give an error or the expected size) {
  auto input = sample_block();
  for (auto id : {codec_id::snappy, codec_id::zstd}) {
    auto codec = make(id);
    std::string compressed;
    CAF_REQUIRE(codec->compress(input, compressed).ok());
    size_t detected = 0;
    size_t safe = 0;
    std::string output;
    for (size_t pos = 0; pos < compressed.size(); ++pos) {
      for (unsigned mask : {0x01u, 0x10u, 0x80u, 0xFFu}) {
        auto damaged = compressed;
        damaged[pos] = static_cast<char>(damaged[pos] ^ mask);
        auto st = codec->decompress(damaged, input.size(), one_mib, output);
        safe += safe_outcome(st, output, input.size()) ? 1 : 0;
        detected += st.ok() ? 0 : 1;
      }
    }
    CAF_CHECK_EQUAL(safe, 4 * compressed.size());
    CAF_MESSAGE(to_string(id) << ": " << detected << " of " << 4 * compressed.size()
                              << " flips detected by the codec (the batch CRC catches the rest)");
    CAF_CHECK_GREATER(detected, 0u);
    // The object still works after all that.
    CAF_CHECK(codec->decompress(compressed, input.size(), one_mib, output).ok());
    CAF_CHECK(output == input);
  }
}

CAF_TEST(flipped bytes in a zstd stream without declared size are safe) {
  auto stream = zstd_rle_stream(3);
  auto codec = make(codec_id::zstd);
  std::string output;
  for (size_t pos = 0; pos < stream.size(); ++pos) {
    for (unsigned mask : {0x01u, 0x08u, 0x80u, 0xFFu}) {
      auto damaged = stream;
      damaged[pos] = static_cast<char>(damaged[pos] ^ mask);
      auto st = codec->decompress(damaged, 3 * 128 * 1024, one_mib, output);
      CAF_CHECK(safe_outcome(st, output, 3 * 128 * 1024));
    }
  }
}

CAF_TEST(every truncation is an error) {
  auto input = sample_block();
  for (auto id : {codec_id::none, codec_id::snappy, codec_id::zstd}) {
    auto codec = make(id);
    std::string compressed;
    CAF_REQUIRE(codec->compress(input, compressed).ok());
    std::string output;
    size_t refused = 0;
    for (size_t length = 0; length < compressed.size(); ++length) {
      auto st = codec->decompress(std::string_view{compressed}.substr(0, length), input.size(),
                                  one_mib, output);
      refused += st.code() == errc::decompression_failed ? 1 : 0;
    }
    CAF_CHECK_EQUAL(refused, compressed.size());
  }
}

CAF_TEST(random garbage gives an error or the expected size) {
  std::mt19937 rng{42};
  for (auto id : {codec_id::none, codec_id::snappy, codec_id::zstd}) {
    auto codec = make(id);
    std::string output;
    for (size_t length = 0; length < 400; ++length) {
      std::string garbage(length, '\0');
      for (auto& c : garbage) c = static_cast<char>(rng() & 0xFF);
      if (id == codec_id::zstd && length >= 4) garbage.replace(0, 4, "\x28\xB5\x2F\xFD");
      auto st = codec->decompress(garbage, 1000, one_mib, output);
      CAF_CHECK(safe_outcome(st, output, 1000));
      st = codec->decompress(garbage, block_codec::unknown_size, 4096, output);
      CAF_CHECK(st.ok() || st.code() == errc::decompression_failed ||
                st.code() == errc::size_limit_exceeded);
    }
  }
}
