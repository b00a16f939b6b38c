#define CAF_SUITE frame
#include "caf/test/unit_test.hpp"

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "codec/frame.hpp"

using namespace walrus;
using namespace walrus::codec;

namespace {

constexpr uint32_t test_max_frame_bytes = 64 * 1024;

std::string body_of(size_t size, uint32_t tag) {
  std::string body(size, '\0');
  for (size_t i = 0; i < size; ++i) body[i] = static_cast<char>((i * 131 + tag * 7) & 0xFF);
  return body;
}

// Frames of awkward sizes: around the header size, large, exactly the limit.
std::vector<std::string> sample_bodies() {
  std::vector<std::string> bodies;
  uint32_t tag = 0;
  for (size_t size : {1, 2, 3, 4, 5, 8, 100, 16 * 1024, 65536, 7, 1, 40000})
    bodies.push_back(body_of(size, tag++));
  return bodies;
}

std::string encode(const std::vector<std::string>& bodies) {
  frame_encoder encoder{test_max_frame_bytes};
  std::string stream;
  for (auto& body : bodies) CAF_REQUIRE(encoder.append(body, stream).ok());
  return stream;
}

std::string header(uint32_t length) {
  std::string out(frame_header_bytes, '\0');
  write_frame_length(out.data(), length);
  return out;
}

// What a connection sees: the frames decoded, the error (if any), and the
// largest amount of data the decoder buffered on the way.
struct decoded {
  std::vector<std::string> bodies;
  status error;
  size_t max_buffered = 0;
};

// Feeds `stream` in pieces whose sizes `piece_size` chooses, draining after each.
decoded decode(std::string_view stream, const std::function<size_t()>& piece_size,
               uint32_t max_frame_bytes = test_max_frame_bytes) {
  frame_decoder decoder{max_frame_bytes};
  decoded out;
  size_t offset = 0;
  while (offset < stream.size() && out.error.ok()) {
    size_t n = std::min(piece_size(), stream.size() - offset);
    decoder.feed(stream.data() + offset, n);
    offset += n;
    for (;;) {
      auto next = decoder.next();
      out.max_buffered = std::max(out.max_buffered, decoder.buffered_bytes());
      if (!next.ok()) {
        out.error = next.error();
        break;
      }
      if (!*next) break;
      out.bodies.emplace_back(**next);
    }
  }
  if (out.error.ok()) out.error = decoder.end_of_stream();
  return out;
}

}  // namespace

CAF_TEST(the length is a little - endian u32) {
  std::string hdr(4, '\0');
  write_frame_length(hdr.data(), 0x01020304);
  CAF_CHECK(hdr == std::string("\x04\x03\x02\x01", 4));
  CAF_CHECK_EQUAL(read_frame_length("\xFF\xFF\xFF\xFF"), 0xFFFFFFFFu);
  frame_encoder encoder{test_max_frame_bytes};
  std::string out = "prefix";
  CAF_REQUIRE(encoder.append("hello", out).ok());
  CAF_CHECK(out == std::string("prefix\x05\x00\x00\x00hello", 15));
}

CAF_TEST(in - place framing writes the same bytes as append) {
  frame_encoder encoder{test_max_frame_bytes};
  std::string appended;
  std::string in_place;
  for (auto& body : sample_bodies()) {
    CAF_REQUIRE(encoder.append(body, appended).ok());
    auto at = encoder.begin_frame(in_place);
    in_place += body;  // e.g. message.AppendToString(&in_place)
    CAF_REQUIRE(encoder.end_frame(in_place, at).ok());
  }
  CAF_CHECK(in_place == appended);
}

CAF_TEST(the encoder refuses empty and oversized bodies) {
  frame_encoder encoder{100};
  std::string out = "kept";
  auto st = encoder.append("", out);
  CAF_CHECK(st.code() == errc::invalid_argument);
  st = encoder.append(std::string(101, 'x'), out);
  CAF_CHECK(st.code() == errc::frame_too_large);
  CAF_CHECK_EQUAL(st.message(), "frame body of 101 bytes exceeds the peer's limit of 100 bytes");
  CAF_CHECK_EQUAL(out, "kept");
  CAF_CHECK(encoder.append(std::string(100, 'x'), out).ok());
  // In place: a failed frame is rolled back.
  out = "kept";
  auto at = encoder.begin_frame(out);
  out += std::string(101, 'x');
  CAF_CHECK(encoder.end_frame(out, at).code() == errc::frame_too_large);
  CAF_CHECK_EQUAL(out, "kept");
  at = encoder.begin_frame(out);
  CAF_CHECK(encoder.end_frame(out, at).code() == errc::invalid_argument);
  CAF_CHECK_EQUAL(out, "kept");
}

CAF_TEST(every way of splitting the stream yields the same frames) {
  auto bodies = sample_bodies();
  auto stream = encode(bodies);
  auto whole = decode(stream, [&] { return stream.size(); });
  CAF_REQUIRE(whole.error.ok());
  CAF_CHECK(whole.bodies == bodies);
  CAF_CHECK_EQUAL(whole.max_buffered, 0u);  // whole frames are never copied
  auto bytewise = decode(stream, [] { return size_t{1}; });
  CAF_REQUIRE(bytewise.error.ok());
  CAF_CHECK(bytewise.bodies == bodies);
  for (size_t piece : {2, 3, 4, 5, 4095, 16 * 1024 + 3}) {
    auto fixed = decode(stream, [=] { return piece; });
    CAF_CHECK(fixed.bodies == bodies);
  }
  std::mt19937 rng{7};
  for (int round = 0; round < 50; ++round) {
    auto random = decode(stream, [&] { return size_t{1} + rng() % (round < 25 ? 64 : 100000); });
    CAF_REQUIRE(random.error.ok());
    CAF_CHECK(random.bodies == bodies);
    CAF_CHECK_LESS_OR_EQUAL(random.max_buffered, frame_header_bytes + test_max_frame_bytes);
  }
}

CAF_TEST(every two - piece split of a small stream yields the same frames) {
  std::vector<std::string> bodies{"a", "bc", "def", "ghij", "klmno"};
  auto stream = encode(bodies);
  for (size_t split = 0; split <= stream.size(); ++split) {
    bool first = true;
    auto two = decode(stream, [&] { return std::exchange(first, false) ? split : stream.size(); });
    CAF_REQUIRE(two.error.ok());
    CAF_CHECK(two.bodies == bodies);
  }
}

CAF_TEST(an oversized length is refused as soon as the header is complete) {
  frame_decoder decoder{test_max_frame_bytes};
  auto hdr = header(test_max_frame_bytes + 1);
  for (size_t i = 0; i < 3; ++i) {
    decoder.feed(hdr.data() + i, 1);
    auto next = decoder.next();
    CAF_REQUIRE(next.ok());
    CAF_CHECK(!*next);
  }
  decoder.feed(hdr.data() + 3, 1);
  auto next = decoder.next();
  CAF_REQUIRE(!next.ok());
  CAF_CHECK(next.error().code() == errc::frame_too_large);
  CAF_CHECK_EQUAL(next.error().message(),
                  "frame of 65537 bytes at stream offset 0 exceeds the limit of 65536 bytes");
  CAF_CHECK_EQUAL(decoder.buffered_bytes(), 0u);
}

CAF_TEST(errors name the offset of the bad frame and are sticky) {
  auto stream = encode({"first", "second"}) + header(0) + encode({"after"});
  frame_decoder decoder{test_max_frame_bytes};
  decoder.feed(stream.data(), stream.size());
  CAF_CHECK(**decoder.next() == "first");
  CAF_CHECK(**decoder.next() == "second");
  auto next = decoder.next();
  CAF_REQUIRE(!next.ok());
  CAF_CHECK(next.error().code() == errc::malformed_frame);
  CAF_CHECK_EQUAL(next.error().message(),
                  "zero-length frame at stream offset 19: every frame has a body");
  CAF_CHECK(decoder.failed());
  auto valid = encode({"valid"});
  decoder.feed(valid.data(), valid.size());
  CAF_CHECK(decoder.next().error().code() == errc::malformed_frame);
  CAF_CHECK(decoder.end_of_stream().code() == errc::malformed_frame);
}

CAF_TEST(a truncated stream needs more and fails at end of stream) {
  auto stream = encode({"complete", "truncated body"});
  auto cut = stream.substr(0, stream.size() - 4);
  frame_decoder decoder{test_max_frame_bytes};
  decoder.feed(cut.data(), cut.size());
  CAF_CHECK(**decoder.next() == "complete");
  auto next = decoder.next();
  CAF_REQUIRE(next.ok());
  CAF_CHECK(!*next);
  auto st = decoder.end_of_stream();
  CAF_CHECK(st.code() == errc::malformed_frame);
  CAF_CHECK_EQUAL(st.message(),
                  "stream ended inside a frame at stream offset 12: 10 of 14 body bytes");
  // The rest arrives after all: the frame completes.
  decoder.feed(stream.data() + cut.size(), 4);
  CAF_CHECK(**decoder.next() == "truncated body");
  CAF_CHECK(!*decoder.next());
  CAF_CHECK(decoder.end_of_stream().ok());
}

CAF_TEST(a stream ending inside a header fails at end of stream) {
  frame_decoder decoder{test_max_frame_bytes};
  decoder.feed("\x05\x00", 2);
  CAF_CHECK(!*decoder.next());
  auto st = decoder.end_of_stream();
  CAF_CHECK_EQUAL(st.message(),
                  "stream ended inside a frame header at stream offset 0: 2 of 4 header bytes");
  frame_decoder fresh{test_max_frame_bytes};
  CAF_CHECK(fresh.end_of_stream().ok());
}

CAF_TEST(a text protocol on the port is refused at once) {
  std::string http = "GET / HTTP/1.1\r\nHost: primary\r\n\r\n";
  auto result = decode(http, [] { return size_t{1}; });
  CAF_CHECK(result.error.code() == errc::frame_too_large);  // "GET " = 542393671
  CAF_CHECK(result.bodies.empty());
  CAF_CHECK_LESS_OR_EQUAL(result.max_buffered, frame_header_bytes);
}

CAF_TEST(random garbage ends in an error or a need for more) {
  std::mt19937 rng{1234};
  for (int round = 0; round < 200; ++round) {
    std::string garbage(1 + rng() % 2000, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng() & 0xFF);
    if (round % 2 == 0) garbage[rng() % garbage.size()] = '\0';  // small lengths happen too
    auto result = decode(
        garbage, [&] { return size_t{1} + rng() % 16; }, 256);
    auto code = result.error.code();
    CAF_CHECK(code == errc::none || code == errc::frame_too_large || code == errc::malformed_frame);
    CAF_CHECK_LESS_OR_EQUAL(result.max_buffered, frame_header_bytes + 256);
  }
}

CAF_TEST(the limit can be raised after the handshake) {
  auto big = encode({std::string(40000, 'b')});
  frame_decoder decoder{1024};
  decoder.feed(big.data(), 2);
  CAF_CHECK(!*decoder.next());
  decoder.set_max_frame_bytes(test_max_frame_bytes);  // header not complete yet
  decoder.feed(big.data() + 2, big.size() - 2);
  auto next = decoder.next();
  CAF_REQUIRE(next.ok() && *next);
  CAF_CHECK_EQUAL((*next)->size(), 40000u);
  frame_decoder strict{1024};
  strict.feed(big.data(), big.size());
  CAF_CHECK(strict.next().error().code() == errc::frame_too_large);
}

CAF_TEST(reads of exact sizes yield every body whole and in place) {
  auto bodies = sample_bodies();
  auto stream = encode(bodies);
  frame_reader reader{test_max_frame_bytes};
  std::vector<std::string> got;
  size_t at = 0;
  while (at < stream.size()) {
    auto n = reader.next_read();
    CAF_REQUIRE_LESS_OR_EQUAL(at + n, stream.size());
    auto body = reader.on_read(stream.data() + at, n);
    CAF_REQUIRE(body.ok());
    CAF_CHECK_EQUAL(reader.inside_frame(), !*body);
    if (*body) got.emplace_back(stream.data() + at, n);
    at += n;
  }
  CAF_CHECK_EQUAL(got, bodies);
  CAF_CHECK_EQUAL(reader.stream_offset(), stream.size());
  CAF_CHECK_EQUAL(reader.next_read(), frame_header_bytes);
}

CAF_TEST(an exact reader refuses what the decoder refuses and stays failed) {
  frame_reader reader{16};
  auto ok = header(16);
  CAF_REQUIRE(reader.on_read(ok.data(), 4).ok());
  std::string body(16, 'b');
  CAF_REQUIRE(*reader.on_read(body.data(), 16));
  auto big = header(17);
  auto refused = reader.on_read(big.data(), 4);
  CAF_REQUIRE(!refused.ok());
  CAF_CHECK(refused.error().code() == errc::frame_too_large);
  CAF_CHECK_EQUAL(refused.error().message(),
                  "frame of 17 bytes at stream offset 20 exceeds the limit of 16 bytes");
  CAF_CHECK(!reader.on_read(ok.data(), 4).ok());  // sticky
  frame_reader other{16};
  auto zero = header(0);
  auto empty = other.on_read(zero.data(), 4);
  CAF_REQUIRE(!empty.ok());
  CAF_CHECK(empty.error().code() == errc::malformed_frame);
  // A raised limit applies from the next header on.
  frame_reader raised{16};
  raised.set_max_frame_bytes(17);
  CAF_CHECK(raised.on_read(big.data(), 4).ok());
  CAF_CHECK_EQUAL(raised.next_read(), 17u);
}
