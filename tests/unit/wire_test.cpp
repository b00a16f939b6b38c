#define CAF_SUITE wire
#include "caf/test/unit_test.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "actors/auth.hpp"
#include "actors/frame_buffers.hpp"
#include "actors/read_sizer.hpp"
#include "actors/wire.hpp"
#include "codec/frame.hpp"
#include "tests/support/records.hpp"

using namespace walrus;
using namespace walrus::wire_format;
using codec::codec_id;

namespace {

// The error code's name, so that a failing check prints both sides.
std::string code_of(const status& st) {
  return to_string(st.code());
}

template <class T>
std::string code_of(const result<T>& res) {
  return res.ok() ? "none" : to_string(res.error().code());
}

// Copies: a reference into a temporary status would dangle inside CAF_CHECK.
std::string message_of(const status& st) {
  return st.message();
}

template <class T>
std::string message_of(const result<T>& res) {
  return res.ok() ? "" : res.error().message();
}

bool same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Encodes `frames` into one stream with the codec/frame.hpp encoder.
std::string encode_all(const std::vector<wire::Frame>& frames,
                       uint32_t max_frame_bytes = codec::default_max_frame_bytes) {
  codec::frame_encoder encoder{max_frame_bytes};
  std::string stream;
  for (auto& frame : frames) CAF_REQUIRE(encode_frame(frame, encoder, stream).ok());
  return stream;
}

// Splits `stream` with codec::frame_decoder, fed `piece` bytes at a time,
// and decodes every body.
std::vector<wire::Frame> decode_all(std::string_view stream, size_t piece,
                                    uint32_t max_frame_bytes = codec::default_max_frame_bytes) {
  codec::frame_decoder decoder{max_frame_bytes};
  std::vector<wire::Frame> frames;
  for (size_t offset = 0; offset < stream.size(); offset += piece) {
    decoder.feed(stream.data() + offset, std::min(piece, stream.size() - offset));
    for (;;) {
      auto next = decoder.next();
      CAF_REQUIRE(next.ok());
      if (!*next) break;
      wire::Frame frame;
      auto st = decode_frame(**next, frame);
      CAF_REQUIRE(st.ok());
      frames.push_back(std::move(frame));
    }
  }
  CAF_REQUIRE(decoder.end_of_stream().ok());
  return frames;
}

// One frame across the wire and back, as the brokers will carry it.
wire::Frame transmit(const wire::Frame& frame) {
  auto frames = decode_all(encode_all({frame}, codec::handshake_max_frame_bytes), 4096,
                           codec::handshake_max_frame_bytes);
  CAF_REQUIRE_EQUAL(frames.size(), 1u);
  return frames.front();
}

std::string body_of(const wire::Frame& frame) {
  std::string body;
  CAF_REQUIRE(frame.SerializeToString(&body));
  return body;
}

// A batch of `n` records (one transaction), in two pieces as the batcher
// may seal it.
batch sample_batch(uint64_t first, uint64_t n, size_t payload_bytes = 10) {
  batch out;
  auto records = testing::framed_transaction(first, n, payload_bytes);
  auto half = wal::encoded_record_bytes(payload_bytes) * (n / 2);
  out.records = {shared_bytes::adopt(records.substr(0, half)),
                 shared_bytes::adopt(records.substr(half))};
  out.first_sequence = first;
  out.last_sequence = first + n - 1;
  out.codec = static_cast<uint8_t>(codec_id::none);
  out.uncompressed_size = static_cast<uint32_t>(records.size());
  out.sent_at_us = 1700000000000000;
  return out;
}

std::string records_of(const batch& b) {
  std::string out;
  for (const auto& piece : b.records) out += piece.bytes;
  return out;
}

const batch_limits none_limits{codec_id::none, uncompressed_limit(codec::default_max_frame_bytes)};

// One sample of every body type.
std::vector<wire::Frame> one_of_each() {
  std::vector<wire::Frame> frames(12);
  auto& hello = *frames[0].mutable_hello();
  hello.set_protocol_version(protocol_version);
  hello.set_cluster_id("cluster-a");
  hello.set_replica_id("replica-1");
  hello.set_epoch(3);
  hello.set_start_sequence(101);
  hello.add_codecs(wire::CODEC_ZSTD);
  hello.add_codecs(wire::CODEC_SNAPPY);
  hello.set_max_frame_bytes(codec::default_max_frame_bytes);
  hello.set_client_nonce(std::string(16, '\x01'));
  frames[1].mutable_challenge()->set_server_nonce(std::string(16, '\x02'));
  frames[2].mutable_auth_response()->set_proof(std::string(32, '\x03'));
  auto& welcome = *frames[3].mutable_welcome();
  welcome.set_protocol_version(protocol_version);
  welcome.set_cluster_id("cluster-a");
  welcome.set_primary_id("primary-1");
  welcome.set_epoch(3);
  welcome.set_codec(wire::CODEC_ZSTD);
  welcome.set_max_frame_bytes(codec::default_max_frame_bytes);
  welcome.set_start_sequence(101);
  welcome.set_first_retained(1);
  welcome.set_last_sequence(500);
  welcome.set_proof(std::string(32, '\x04'));
  welcome.set_heartbeat_interval_ms(1000);
  frames[4] = make_frame(sample_batch(101, 20));
  frames[5] = make_frame(ack{120, 110, 105, 42});
  frames[6] = make_frame(nack{121, errc::sequence_gap, "expected 121, got 130"});
  frames[7] = make_frame(heartbeat{1700000000000000, 500});
  auto& begin = *frames[8].mutable_snapshot_begin();
  begin.set_snapshot_sequence(400);
  begin.set_total_bytes(1 << 20);
  begin.set_epoch(3);
  auto& chunk = *frames[9].mutable_snapshot_chunk();
  chunk.set_offset(65536);
  chunk.set_data(std::string(1000, '\xee'));
  auto& end = *frames[10].mutable_snapshot_end();
  end.set_total_bytes(1 << 20);
  end.set_crc32c(0xdeadbeef);
  frames[11] = make_error_frame(status{errc::not_retained, "sequence 5 is no longer retained"});
  return frames;
}

}  // namespace

// -- frames -------------------------------------------------------------------

CAF_TEST(every frame type survives encode and decode whole and byte by byte) {
  auto frames = one_of_each();
  std::vector<std::string> names;
  for (auto& frame : frames) names.emplace_back(frame_name(frame));
  CAF_CHECK_EQUAL(
      names, (std::vector<std::string>{"Hello", "Challenge", "AuthResponse", "Welcome", "Batch",
                                       "Ack", "Nack", "Heartbeat", "SnapshotBegin", "SnapshotChunk",
                                       "SnapshotEnd", "Error"}));
  auto stream = encode_all(frames);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, stream.size()}) {
    auto decoded = decode_all(stream, piece);
    CAF_REQUIRE_EQUAL(decoded.size(), frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      CAF_CHECK(same(decoded[i], frames[i]));
      CAF_CHECK_EQUAL(frame_name(decoded[i]), names[i]);
    }
  }
}

CAF_TEST(encode frame appends length and body after what the buffer holds) {
  auto frame = make_frame(ack{7, 6, 5, 4});
  codec::frame_encoder encoder{codec::handshake_max_frame_bytes};
  std::string out = "prefix";
  CAF_REQUIRE(encode_frame(frame, encoder, out).ok());
  auto body = body_of(frame);
  CAF_REQUIRE_EQUAL(out.size(), 6 + codec::frame_header_bytes + body.size());
  CAF_CHECK_EQUAL(out.substr(0, 6), "prefix");
  CAF_CHECK_EQUAL(codec::read_frame_length(out.data() + 6), body.size());
  CAF_CHECK_EQUAL(out.substr(6 + codec::frame_header_bytes), body);
}

CAF_TEST(encode frame refuses a frame above the peer limit and leaves the buffer alone) {
  auto frame = make_frame(sample_batch(1, 100, 700));  // about 70 KB
  auto body_bytes = frame.ByteSizeLong();
  std::string out = "kept";
  codec::frame_encoder small{codec::handshake_max_frame_bytes};
  auto st = encode_frame(frame, small, out);
  CAF_CHECK_EQUAL(code_of(st), "frame_too_large");
  CAF_CHECK_EQUAL(st.message(), "Batch frame of " + std::to_string(body_bytes) +
                                    " bytes exceeds the peer's limit of 65536 bytes");
  CAF_CHECK_EQUAL(out, "kept");
  // Exactly at the limit is fine.
  codec::frame_encoder exact{static_cast<uint32_t>(body_bytes)};
  CAF_CHECK(encode_frame(frame, exact, out).ok());
}

CAF_TEST(encode frame refuses a frame with no body) {
  codec::frame_encoder encoder{codec::handshake_max_frame_bytes};
  std::string out;
  auto st = encode_frame(wire::Frame{}, encoder, out);
  CAF_CHECK_EQUAL(code_of(st), "invalid_argument");
  CAF_CHECK(out.empty());
}

CAF_TEST(garbage bytes as a frame body are malformed not a crash) {
  wire::Frame frame;
  auto st = decode_frame("\xff\xff\xff\xff", frame);
  CAF_CHECK_EQUAL(code_of(st), "malformed_frame");
  CAF_CHECK_EQUAL(st.message(),
                  "frame body of 4 bytes does not parse as walrus.wire.Frame (corrupt, truncated "
                  "or a string that is not UTF-8; starts ff ff ff ff)");
  CAF_CHECK(frame.body_case() == wire::Frame::BODY_NOT_SET);
  // A valid frame cut short: the Batch's length prefix promises more bytes.
  auto body = body_of(make_frame(sample_batch(1, 10)));
  CAF_CHECK_EQUAL(code_of(decode_frame(std::string_view{body}.substr(0, body.size() - 3), frame)),
                  "malformed_frame");
  // A string field that is not UTF-8 (proto3 requires it).
  wire::Frame bad_id;
  bad_id.mutable_hello()->set_replica_id("ok");
  auto hello = body_of(bad_id);
  auto at = hello.find("ok");
  CAF_REQUIRE(at != std::string::npos);
  hello[at] = '\xff';
  CAF_CHECK_EQUAL(code_of(decode_frame(hello, frame)), "malformed_frame");
}

CAF_TEST(random and mutated bodies never crash the decoder) {
  std::mt19937 rng{20240601};
  wire::Frame frame;
  size_t parsed = 0, malformed = 0, unknown = 0;
  auto classify = [&](const status& st) {
    if (st.ok())
      ++parsed;
    else if (st.code() == errc::malformed_frame)
      ++malformed;
    else if (st.code() == errc::unknown_frame)
      ++unknown;
    else
      CAF_FAIL("unexpected error " << st.to_string());
  };
  for (int i = 0; i < 20000; ++i) {
    std::string body(1 + rng() % 64, '\0');
    for (auto& c : body) c = static_cast<char>(rng());
    classify(decode_frame(body, frame));
  }
  // Bit flips of real frames reach deeper into the parser.
  for (auto& sample : one_of_each()) {
    auto body = body_of(sample);
    for (int i = 0; i < 2000; ++i) {
      auto mutated = body;
      for (int flips = 1 + rng() % 3; flips > 0; --flips)
        mutated[rng() % mutated.size()] ^= static_cast<char>(1u << (rng() % 8));
      classify(decode_frame(mutated, frame));
    }
  }
  CAF_MESSAGE("parsed " << parsed << ", malformed " << malformed << ", unknown " << unknown);
  CAF_CHECK(malformed > 0);
  CAF_CHECK(unknown > 0);
}

CAF_TEST(a frame with no body is unknown and names the fields it did carry) {
  wire::Frame frame;
  auto st = decode_frame("", frame);
  CAF_CHECK_EQUAL(code_of(st), "unknown_frame");
  CAF_CHECK_EQUAL(st.message(),
                  "Frame of 0 bytes sets no body known to protocol version 2 (no fields at all)");
  // Field 13, varint 1: what a body type added by a newer version looks like.
  st = decode_frame(std::string{"\x68\x01", 2}, frame);
  CAF_CHECK_EQUAL(code_of(st), "unknown_frame");
  CAF_CHECK_EQUAL(st.message(),
                  "Frame of 2 bytes sets no body known to protocol version 2 (unknown fields 13)");
  CAF_CHECK(frame.body_case() == wire::Frame::BODY_NOT_SET);
}

CAF_TEST(session frames must come from the side that sends them) {
  auto frames = one_of_each();
  std::vector<std::string> from_primary, from_replica;
  for (auto& frame : frames) {
    if (check_session_frame(frame, peer_role::primary).ok())
      from_primary.emplace_back(frame_name(frame));
    if (check_session_frame(frame, peer_role::replica).ok())
      from_replica.emplace_back(frame_name(frame));
  }
  CAF_CHECK_EQUAL(from_primary,
                  (std::vector<std::string>{"Batch", "Heartbeat", "SnapshotBegin", "SnapshotChunk",
                                            "SnapshotEnd", "Error"}));
  CAF_CHECK_EQUAL(from_replica, (std::vector<std::string>{"Ack", "Nack", "Heartbeat", "Error"}));
  auto st = check_session_frame(frames[4], peer_role::replica);
  CAF_CHECK_EQUAL(code_of(st), "protocol_violation");
  CAF_CHECK_EQUAL(st.message(), "a replica sent Batch, which only the primary sends");
  st = check_session_frame(frames[0], peer_role::replica);
  CAF_CHECK_EQUAL(st.message(), "a replica sent Hello after the handshake completed");
  CAF_CHECK_EQUAL(code_of(check_session_frame(wire::Frame{}, peer_role::primary)), "unknown_frame");
}

// -- conversions ----------------------------------------------------------------

CAF_TEST(a batch crosses to the wire and back and its records are taken over without a copy) {
  auto original = sample_batch(101, 200, 100);
  original.codec = static_cast<uint8_t>(codec_id::zstd);
  original.part = fragment::last;
  auto frame = make_frame(original);
  CAF_CHECK_EQUAL(frame.batch().records(), records_of(original));
  const char* records_data = frame.batch().records().data();
  auto back = from_wire(std::move(*frame.mutable_batch()),
                        batch_limits{codec_id::zstd, max_uncompressed_bytes});
  CAF_REQUIRE(back.ok());
  CAF_REQUIRE_EQUAL(back->records.size(), 1u);
  CAF_CHECK(back->records[0].bytes.data() == records_data);
  CAF_CHECK_EQUAL(back->first_sequence, original.first_sequence);
  CAF_CHECK_EQUAL(back->last_sequence, original.last_sequence);
  CAF_CHECK_EQUAL(back->codec, original.codec);
  CAF_CHECK(back->part == fragment::last);
  CAF_CHECK_EQUAL(back->uncompressed_size, original.uncompressed_size);
  CAF_CHECK_EQUAL(records_of(*back), records_of(original));
  CAF_CHECK_EQUAL(back->sent_at_us, original.sent_at_us);
}

CAF_TEST(a batch survives the full wire path) {
  auto original = sample_batch(7, 9);
  auto frames = decode_all(encode_all({make_frame(original)}), 5);
  CAF_REQUIRE_EQUAL(frames.size(), 1u);
  auto back = from_wire(std::move(*frames[0].mutable_batch()), none_limits);
  CAF_REQUIRE(back.ok());
  CAF_CHECK_EQUAL(records_of(*back), records_of(original));
  CAF_CHECK_EQUAL(back->last_sequence, 15u);
}

CAF_TEST(a batch frame written from its prefix and its records parses as protobuf writes it) {
  for (size_t entry_bytes : {size_t{1}, size_t{100}, size_t{16 * 1024}}) {
    for (uint64_t n : {uint64_t{1}, uint64_t{9}, uint64_t{40}}) {
      auto original = sample_batch(101, n, entry_bytes);
      original.part = fragment::last;
      codec::frame_encoder encoder{codec::default_max_frame_bytes};
      std::string out{"xy"};
      CAF_REQUIRE(batch_frame_prefix(original, encoder, out).ok());
      CAF_CHECK_EQUAL(out.substr(0, 2), "xy");
      out += records_of(original);
      auto expected = make_frame(original);
      // One frame, its length right, its body the same message.
      CAF_REQUIRE_EQUAL(codec::read_frame_length(out.data() + 2),
                        out.size() - 2 - codec::frame_header_bytes);
      CAF_CHECK_EQUAL(out.size() - 2 - codec::frame_header_bytes, expected.ByteSizeLong());
      auto frames = decode_all(out.substr(2), 4096);
      CAF_REQUIRE_EQUAL(frames.size(), 1u);
      CAF_CHECK(google::protobuf::util::MessageDifferencer::Equals(frames[0], expected));
    }
  }
}

CAF_TEST(a batch frame is parsed in place as protobuf parses it) {
  auto original = sample_batch(101, 9, 300);
  original.part = fragment::last;
  codec::frame_encoder encoder{codec::default_max_frame_bytes};
  std::string out;
  CAF_REQUIRE(batch_frame_prefix(original, encoder, out).ok());
  out += records_of(original);
  std::string_view body{out.data() + codec::frame_header_bytes,
                        out.size() - codec::frame_header_bytes};
  auto owner = std::make_shared<int>(7);
  auto fast = parse_batch_frame(body, owner, none_limits);
  CAF_REQUIRE(fast.ok() && fast->has_value());
  const auto& b = **fast;
  CAF_CHECK_EQUAL(b.first_sequence, 101u);
  CAF_CHECK_EQUAL(b.last_sequence, 109u);
  CAF_CHECK(b.part == fragment::last);
  CAF_CHECK_EQUAL(b.uncompressed_size, original.uncompressed_size);
  CAF_CHECK_EQUAL(b.sent_at_us, original.sent_at_us);
  CAF_REQUIRE_EQUAL(b.records.size(), 1u);
  CAF_CHECK_EQUAL(records_of(b), records_of(original));
  CAF_CHECK(b.records[0].owner == owner);
  // In place: the records are the frame's own bytes.
  CAF_CHECK(b.records[0].bytes.data() > body.data() &&
            b.records[0].bytes.data() + b.records[0].size() == body.data() + body.size());
  // Its refusals are from_wire's.
  auto odd = make_frame(original);
  odd.mutable_batch()->set_first_sequence(0);
  auto odd_body = body_of(odd);
  auto refused = parse_batch_frame(odd_body, nullptr, none_limits);
  CAF_CHECK_EQUAL(code_of(refused), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(refused), "batch 0..109: sequences start at 1");
  // Bodies it does not take on are left to protobuf: another frame, a
  // Batch followed by more, a cut one.
  for (std::string other : {body_of(make_frame(ack{1, 1, 1, 1})),
                            std::string(body) + body_of(make_frame(ack{1, 1, 1, 1})),
                            std::string(body.substr(0, body.size() - 1)), std::string{}}) {
    auto left = parse_batch_frame(other, nullptr, none_limits);
    CAF_CHECK(left.ok() && !left->has_value());
  }
}

CAF_TEST(a batch frame above the peer limit is refused and the prefix left alone) {
  auto original = sample_batch(1, 100, 700);  // about 70 KB
  auto body_bytes = make_frame(original).ByteSizeLong();
  codec::frame_encoder small{codec::handshake_max_frame_bytes};
  std::string out{"k"};
  auto st = batch_frame_prefix(original, small, out);
  CAF_CHECK_EQUAL(code_of(st), "frame_too_large");
  CAF_CHECK_EQUAL(st.message(), "Batch frame of " + std::to_string(body_bytes) +
                                    " bytes exceeds the peer's limit of 65536 bytes");
  CAF_CHECK_EQUAL(out.size(), 1u);
  codec::frame_encoder exact{static_cast<uint32_t>(body_bytes)};
  CAF_CHECK(batch_frame_prefix(original, exact, out).ok());
}

namespace {

// The wire form of a well-formed 10-entry batch 101..110, then `change`.
template <class Change>
result<batch> receive_batch(Change change, batch_limits limits = none_limits) {
  auto wire_batch = to_wire(sample_batch(101, 10));
  change(wire_batch);
  return from_wire(std::move(wire_batch), limits);
}

}  // namespace

CAF_TEST(received batches with contradicting fields are malformed) {
  auto res = receive_batch([](wire::Batch& b) { b.set_first_sequence(0); });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(res), "batch 0..110: sequences start at 1");
  res = receive_batch([](wire::Batch& b) { b.set_last_sequence(100); });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(res), "batch 101..100: last_sequence is below first_sequence");
  res = receive_batch([](wire::Batch& b) { b.set_fragment(static_cast<wire::Fragment>(4)); });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(res), "batch 101..110: fragment 4 is not NONE, FIRST, MIDDLE or LAST");
  res = receive_batch([](wire::Batch& b) { b.set_fragment(static_cast<wire::Fragment>(-1)); });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
}

CAF_TEST(a record count that could not fit the records is malformed) {
  // 2^64 - 1 records would overflow any loop over them.
  auto res = receive_batch([](wire::Batch& b) {
    b.set_first_sequence(1);
    b.set_last_sequence(UINT64_MAX);
  });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(res),
                  "batch 1..18446744073709551615: 18446744073709551615 records "
                  "cannot fit in 270 bytes");
  // Each record takes at least its 17-byte header: 10 records need 170 bytes.
  res = receive_batch([](wire::Batch& b) { b.set_uncompressed_size(169); });
  CAF_CHECK_EQUAL(code_of(res), "malformed_frame");
  res = receive_batch([](wire::Batch& b) { b.set_uncompressed_size(170); });
  CAF_CHECK(res.ok());
}

CAF_TEST(a batch in a codec the session did not negotiate is refused) {
  auto res = receive_batch([](wire::Batch& b) { b.set_codec(wire::CODEC_ZSTD); });
  CAF_CHECK_EQUAL(code_of(res), "unsupported_codec");
  CAF_CHECK_EQUAL(message_of(res), "batch 101..110: codec zstd, but the session negotiated none");
  res = receive_batch([](wire::Batch& b) { b.set_codec(static_cast<wire::Codec>(9)); });
  CAF_CHECK_EQUAL(code_of(res), "unsupported_codec");
  CAF_CHECK_EQUAL(message_of(res), "batch 101..110: codec 9, but the session negotiated none");
}

CAF_TEST(uncompressed size is bounded by four frames and 64 MiB) {
  CAF_CHECK_EQUAL(uncompressed_limit(min_max_frame_bytes), 4u * 1024 * 1024);
  CAF_CHECK_EQUAL(uncompressed_limit(codec::default_max_frame_bytes), 64u * 1024 * 1024);
  CAF_CHECK_EQUAL(uncompressed_limit(UINT32_MAX), max_uncompressed_bytes);
  batch_limits limits{codec_id::none, uncompressed_limit(min_max_frame_bytes)};
  auto res =
      receive_batch([](wire::Batch& b) { b.set_uncompressed_size(4 * 1024 * 1024 + 1); }, limits);
  CAF_CHECK_EQUAL(code_of(res), "size_limit_exceeded");
  CAF_CHECK_EQUAL(message_of(res),
                  "batch 101..110: uncompressed_size 4194305 exceeds the limit of 4194304 bytes");
  // At the limit the declared size passes here; the applier checks it against the blob.
  res = receive_batch([](wire::Batch& b) { b.set_uncompressed_size(4 * 1024 * 1024); }, limits);
  CAF_CHECK(res.ok());
}

CAF_TEST(acks heartbeats and nacks convert both ways) {
  ack a{120, 110, 105, 42};
  auto a2 = from_wire(to_wire(a));
  CAF_CHECK_EQUAL(a2.received_sequence, 120u);
  CAF_CHECK_EQUAL(a2.durable_sequence, 110u);
  CAF_CHECK_EQUAL(a2.applied_sequence, 105u);
  CAF_CHECK_EQUAL(a2.timestamp_us, 42u);
  auto h = from_wire(to_wire(heartbeat{99, 500}));
  CAF_CHECK_EQUAL(h.timestamp_us, 99u);
  CAF_CHECK_EQUAL(h.last_sequence, 500u);
  auto n = from_wire(to_wire(nack{121, errc::sequence_gap, "expected 121, got 130"}));
  CAF_REQUIRE(n.ok());
  CAF_CHECK_EQUAL(n->from_sequence, 121u);
  CAF_CHECK(n->code == errc::sequence_gap);
  CAF_CHECK_EQUAL(n->reason, "expected 121, got 130");
}

CAF_TEST(a nack without a sequence or with a foreign code is malformed) {
  wire::Nack in;
  in.set_from_sequence(0);
  in.set_code(static_cast<uint32_t>(errc::sequence_gap));
  auto n = from_wire(in);
  CAF_CHECK_EQUAL(code_of(n), "malformed_frame");
  CAF_CHECK_EQUAL(message_of(n), "Nack from sequence 0: sequences start at 1");
  in.set_from_sequence(5);
  for (uint32_t code : {0u, 7u, 99u, 300u}) {
    in.set_code(code);
    n = from_wire(in);
    CAF_CHECK_EQUAL(code_of(n), "malformed_frame");
    CAF_CHECK_EQUAL(message_of(n),
                    "Nack code " + std::to_string(code) + " is not a walrus error code");
  }
}

CAF_TEST(errors carry walrus codes and bounded messages) {
  auto back = from_wire(to_wire(status{errc::cluster_mismatch, "names both"}));
  CAF_CHECK_EQUAL(code_of(back), "cluster_mismatch");
  CAF_CHECK_EQUAL(back.message(), "names both");
  CAF_CHECK_EQUAL(to_wire(status{errc::auth_failed, "x"}).code(), 22u);
  // A long message is cut at a UTF-8 boundary: "é" is two bytes.
  std::string long_message = "a";
  while (long_message.size() < 3000) long_message += "\xc3\xa9";
  auto cut = to_wire(status{errc::io_error, long_message}).message();
  CAF_CHECK_EQUAL(cut.size(), max_error_message_bytes - 1);
  CAF_CHECK_EQUAL(cut, long_message.substr(0, max_error_message_bytes - 1));
  // The frame still fits a handshake frame and still parses.
  auto frame = transmit(make_error_frame(status{errc::io_error, long_message}));
  CAF_CHECK_EQUAL(frame.error().message(), cut);
}

CAF_TEST(an error with a code this version does not know is a protocol violation) {
  wire::Error in;
  in.set_code(0);
  in.set_message("oops");
  auto st = from_wire(in);
  CAF_CHECK_EQUAL(code_of(st), "protocol_violation");
  CAF_CHECK_EQUAL(st.message(), "peer sent Error with unknown code 0: oops");
  in.set_code(250);
  st = from_wire(in);
  CAF_CHECK_EQUAL(st.message(), "peer sent Error with unknown code 250: oops");
}

CAF_TEST(peer timeout is three heartbeats and at least a second) {
  CAF_CHECK_EQUAL(peer_timeout_ms(1000), 3000u);
  CAF_CHECK_EQUAL(peer_timeout_ms(10), 1000u);
  CAF_CHECK_EQUAL(peer_timeout_ms(UINT32_MAX), UINT32_MAX);
}

// -- acks and nacks -------------------------------------------------------------

CAF_TEST(acks advance within what was sent) {
  ack_validator acks{101};  // the replica holds 1..100
  CAF_CHECK(acks.check(ack{100, 100, 100, 1}).ok());
  CAF_CHECK_EQUAL(code_of(acks.check(ack{101, 100, 100, 2})), "protocol_violation");
  acks.note_sent(150);
  CAF_CHECK(acks.check(ack{150, 120, 130, 3}).ok());
  acks.note_sent(120);  // a resend after a nack lowers nothing
  CAF_CHECK_EQUAL(acks.sent_sequence(), 150u);
  CAF_CHECK(acks.check(ack{150, 150, 150, 4}).ok());
  CAF_CHECK_EQUAL(acks.last_ack().durable_sequence, 150u);
}

CAF_TEST(acks that go backwards or beyond received are violations) {
  ack_validator acks{1};
  acks.note_sent(200);
  CAF_REQUIRE(acks.check(ack{100, 90, 80, 1}).ok());
  auto st = acks.check(ack{99, 90, 80, 2});
  CAF_CHECK_EQUAL(code_of(st), "protocol_violation");
  CAF_CHECK_EQUAL(st.message(), "Ack received_sequence went back from 100 to 99");
  st = acks.check(ack{100, 89, 80, 2});
  CAF_CHECK_EQUAL(st.message(), "Ack durable_sequence went back from 90 to 89");
  st = acks.check(ack{100, 90, 79, 2});
  CAF_CHECK_EQUAL(st.message(), "Ack applied_sequence went back from 80 to 79");
  st = acks.check(ack{110, 111, 100, 2});
  CAF_CHECK_EQUAL(st.message(), "Ack durable_sequence 111 exceeds its received_sequence 110");
  st = acks.check(ack{110, 100, 111, 2});
  CAF_CHECK_EQUAL(st.message(), "Ack applied_sequence 111 exceeds its received_sequence 110");
  st = acks.check(ack{201, 100, 100, 2});
  CAF_CHECK_EQUAL(st.message(), "Ack received_sequence 201 is beyond the last sequence sent, 200");
  // Refused acks changed nothing.
  CAF_CHECK_EQUAL(acks.last_ack().received_sequence, 100u);
  CAF_CHECK(acks.check(ack{100, 90, 80, 3}).ok());
}

CAF_TEST(nacks ask for what was sent and not yet received) {
  ack_validator acks{1};
  acks.note_sent(200);
  CAF_REQUIRE(acks.check(ack{100, 100, 100, 1}).ok());
  CAF_CHECK(acks.check(nack{101, errc::sequence_gap, ""}).ok());
  CAF_CHECK(acks.check(nack{201, errc::sequence_gap, ""}).ok());
  auto st = acks.check(nack{100, errc::sequence_gap, ""});
  CAF_CHECK_EQUAL(code_of(st), "protocol_violation");
  CAF_CHECK_EQUAL(st.message(),
                  "Nack from sequence 100 is at or below the acknowledged received_sequence 100");
  st = acks.check(nack{202, errc::sequence_gap, ""});
  CAF_CHECK_EQUAL(st.message(),
                  "Nack from sequence 202 is beyond the last sequence sent, 200, + 1");
}

// -- handshakes -----------------------------------------------------------------

namespace {

primary_handshake_config primary_config(std::optional<std::string> secret = std::nullopt) {
  primary_handshake_config config;
  config.cluster_id = "cluster-a";
  config.primary_id = "primary-1";
  config.epoch = 3;
  config.codec_preference = {codec_id::zstd, codec_id::snappy, codec_id::none};
  config.max_frame_bytes = 8 * 1024 * 1024;
  config.secret = std::move(secret);
  config.heartbeat_interval_ms = 500;
  return config;
}

replica_handshake_config replica_config(std::optional<std::string> secret = std::nullopt) {
  replica_handshake_config config;
  config.cluster_id = "cluster-a";
  config.replica_id = "replica-1";
  config.epoch = 2;
  config.codecs = {codec_id::snappy, codec_id::zstd};
  config.max_frame_bytes = 2 * 1024 * 1024;
  config.secret = std::move(secret);
  return config;
}

// The primary's WAL holds 50..500 unless a test says otherwise.
struct log_bounds {
  uint64_t first_retained = 50;
  uint64_t last_durable = 500;
};

struct outcome {
  std::optional<primary_session> primary;
  std::optional<replica_session> replica;
  status primary_error;  // what the primary refused, or the Error it received
  status replica_error;
  std::vector<std::string> frames;  // names of the frames that crossed, in order
};

// Plays the handshake over encode/decode like the two brokers would: each
// side answers the other's frame; a refusal sends an Error and ends it.
outcome run(primary_handshake& primary, replica_handshake& replica, uint64_t start,
            log_bounds log = {}) {
  outcome out;
  auto send = [&out](const wire::Frame& frame) {
    out.frames.emplace_back(frame_name(frame));
    return transmit(frame);
  };
  auto hello = replica.make_hello(start);
  CAF_REQUIRE(hello.ok());
  auto to_primary = send(*hello);
  for (int round = 0; round < 4; ++round) {
    auto step = primary.on_frame(to_primary, log.first_retained, log.last_durable);
    if (!step) {
      out.primary_error = step.error();
      if (!primary.peer_refused()) {
        auto refused = replica.on_frame(send(make_error_frame(step.error())));
        CAF_REQUIRE(!refused.ok() && replica.peer_refused());
        out.replica_error = refused.error();
      }
      return out;
    }
    if (step->session) out.primary = step->session;
    auto answer = replica.on_frame(send(step->reply));
    if (!answer) {
      out.replica_error = answer.error();
      if (!replica.peer_refused()) {
        auto refused = primary.on_frame(send(make_error_frame(answer.error())), 0, 0);
        CAF_REQUIRE(!refused.ok() && primary.peer_refused());
        out.primary_error = refused.error();
      }
      return out;
    }
    if (answer->session) {
      out.replica = answer->session;
      return out;
    }
    CAF_REQUIRE(answer->reply.has_value());
    to_primary = send(*answer->reply);
  }
  CAF_FAIL("the handshake did not end");
  return out;
}

using names = std::vector<std::string>;

}  // namespace

CAF_TEST(handshake without a secret goes straight to welcome) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config()};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Welcome"}));
  CAF_REQUIRE(out.primary && out.replica);
  CAF_CHECK(primary.done() && replica.done());
  CAF_CHECK_EQUAL(out.primary->replica_id, "replica-1");
  CAF_CHECK_EQUAL(out.primary->replica_epoch, 2u);
  CAF_CHECK_EQUAL(out.primary->start_sequence, 101u);
  CAF_CHECK(out.primary->codec == codec_id::zstd);
  CAF_CHECK_EQUAL(out.primary->send_max_frame_bytes, 2u * 1024 * 1024);
  CAF_CHECK_EQUAL(out.primary->receive_max_frame_bytes, 8u * 1024 * 1024);
  CAF_CHECK_EQUAL(out.primary->max_uncompressed_bytes, 8u * 1024 * 1024);
  CAF_CHECK_EQUAL(out.primary->heartbeat_interval_ms, 500u);
  CAF_CHECK_EQUAL(out.replica->primary_id, "primary-1");
  CAF_CHECK_EQUAL(out.replica->primary_epoch, 3u);
  CAF_CHECK(out.replica->codec == codec_id::zstd);
  CAF_CHECK_EQUAL(out.replica->start_sequence, 101u);
  CAF_CHECK_EQUAL(out.replica->first_retained, 50u);
  CAF_CHECK_EQUAL(out.replica->last_sequence, 500u);
  CAF_CHECK_EQUAL(out.replica->send_max_frame_bytes, 8u * 1024 * 1024);
  CAF_CHECK_EQUAL(out.replica->receive_max_frame_bytes, 2u * 1024 * 1024);
  CAF_CHECK_EQUAL(out.replica->heartbeat_interval_ms, 500u);
  CAF_CHECK(out.replica->limits().codec == codec_id::zstd);
  CAF_CHECK_EQUAL(out.replica->limits().max_uncompressed_bytes, 8u * 1024 * 1024);
}

CAF_TEST(handshake with a shared secret proves both sides) {
  primary_handshake primary{primary_config("s3cret")};
  replica_handshake replica{replica_config("s3cret")};
  auto out = run(primary, replica, 1, {1, 500});
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Challenge", "AuthResponse", "Welcome"}));
  CAF_REQUIRE(out.primary && out.replica);
  CAF_CHECK_EQUAL(out.primary->start_sequence, 1u);
  CAF_CHECK_EQUAL(out.replica->start_sequence, 1u);
}

CAF_TEST(a replica with the wrong secret is refused with auth_failed) {
  primary_handshake primary{primary_config("s3cret")};
  replica_handshake replica{replica_config("guess")};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Challenge", "AuthResponse", "Error"}));
  CAF_CHECK(!out.primary && !out.replica);
  CAF_CHECK_EQUAL(code_of(out.primary_error), "auth_failed");
  CAF_CHECK_EQUAL(out.primary_error.message(),
                  "AuthResponse proof of replica 'replica-1' is wrong: the replica does not know "
                  "the secret");
  CAF_CHECK_EQUAL(code_of(out.replica_error), "auth_failed");
  CAF_CHECK_EQUAL(out.replica_error.message(), out.primary_error.message());
}

CAF_TEST(a replica without a secret cannot answer a challenge) {
  primary_handshake primary{primary_config("s3cret")};
  replica_handshake replica{replica_config()};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Challenge", "Error"}));
  CAF_CHECK_EQUAL(code_of(out.replica_error), "auth_failed");
  CAF_CHECK_EQUAL(out.replica_error.message(),
                  "the primary requires authentication but this replica has no secret");
  CAF_CHECK_EQUAL(code_of(out.primary_error), "auth_failed");
  CAF_CHECK(primary.peer_refused());
}

CAF_TEST(a replica with a secret refuses a welcome without a challenge) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config("s3cret")};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Welcome", "Error"}));
  CAF_CHECK(out.primary.has_value());  // the primary thought it was done
  CAF_CHECK(!out.replica);
  CAF_CHECK_EQUAL(code_of(out.replica_error), "auth_failed");
  CAF_CHECK_EQUAL(out.replica_error.message(),
                  "Welcome without a Challenge, but this replica "
                  "requires the primary to authenticate");
}

CAF_TEST(a missing auth response is auth_failed) {
  // Something else where the AuthResponse belongs.
  primary_handshake primary{primary_config("s3cret")};
  replica_handshake replica{replica_config("s3cret")};
  auto hello = replica.make_hello(101);
  CAF_REQUIRE(hello.ok());
  auto challenge = primary.on_frame(transmit(*hello), 50, 500);
  CAF_REQUIRE(challenge.ok() && !challenge->session);
  auto res = primary.on_frame(transmit(make_frame(ack{100, 100, 100, 1})), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "auth_failed");
  CAF_CHECK_EQUAL(message_of(res), "expected the AuthResponse to the Challenge, got Ack");
  CAF_CHECK(primary.failed() && !primary.peer_refused());
  // An AuthResponse without a proof.
  primary_handshake primary2{primary_config("s3cret")};
  replica_handshake replica2{replica_config("s3cret")};
  hello = replica2.make_hello(101);
  CAF_REQUIRE(hello.ok());
  CAF_REQUIRE(primary2.on_frame(transmit(*hello), 50, 500).ok());
  wire::Frame empty_proof;
  empty_proof.mutable_auth_response();
  res = primary2.on_frame(transmit(empty_proof), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "auth_failed");
  CAF_CHECK_EQUAL(message_of(res), "AuthResponse of replica 'replica-1' carries no proof");
}

CAF_TEST(a recorded proof replayed on a new connection fails) {
  // Connection 1: an eavesdropper records Hello and AuthResponse.
  primary_handshake first{primary_config("s3cret")};
  replica_handshake replica{replica_config("s3cret")};
  auto hello = replica.make_hello(101);
  CAF_REQUIRE(hello.ok());
  auto challenge = first.on_frame(transmit(*hello), 50, 500);
  CAF_REQUIRE(challenge.ok());
  auto answer = replica.on_frame(transmit(challenge->reply));
  CAF_REQUIRE(answer.ok() && answer->reply);
  auto recorded_proof = *answer->reply;
  CAF_REQUIRE(first.on_frame(transmit(recorded_proof), 50, 500).ok());
  // Connection 2: the attacker replays both; the primary's nonce is new.
  primary_handshake second{primary_config("s3cret")};
  auto challenge2 = second.on_frame(transmit(*hello), 50, 500);
  CAF_REQUIRE(challenge2.ok());
  CAF_CHECK_NOT_EQUAL(challenge2->reply.challenge().server_nonce(),
                      challenge->reply.challenge().server_nonce());
  auto res = second.on_frame(transmit(recorded_proof), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "auth_failed");
}

CAF_TEST(a welcome with a forged proof is refused) {
  // An impostor primary that does not know the secret sends a Challenge of
  // its own, then a Welcome with whatever proof it can make up.
  for (std::string proof : {std::string{}, std::string(32, '\x5a')}) {
    replica_handshake replica{replica_config("s3cret")};
    CAF_REQUIRE(replica.make_hello(101).ok());
    wire::Frame challenge;
    challenge.mutable_challenge()->set_server_nonce(std::string(16, '\x07'));
    CAF_REQUIRE(replica.on_frame(transmit(challenge)).ok());
    wire::Frame welcome;
    auto& w = *welcome.mutable_welcome();
    w.set_protocol_version(protocol_version);
    w.set_cluster_id("cluster-a");
    w.set_codec(wire::CODEC_NONE);
    w.set_max_frame_bytes(codec::default_max_frame_bytes);
    w.set_start_sequence(101);
    w.set_first_retained(1);
    w.set_last_sequence(500);
    w.set_heartbeat_interval_ms(1000);
    w.set_proof(proof);
    auto res = replica.on_frame(transmit(welcome));
    CAF_CHECK_EQUAL(code_of(res), "auth_failed");
    CAF_CHECK_EQUAL(message_of(res), proof.empty() ? "Welcome carries no proof"
                                                   : "Welcome proof is wrong: the primary does "
                                                     "not know the secret");
  }
}

CAF_TEST(a primary that speaks another version names both) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config()};
  auto hello = replica.make_hello(101);
  CAF_REQUIRE(hello.ok());
  hello->mutable_hello()->set_protocol_version(1);
  auto res = primary.on_frame(transmit(*hello), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "version_mismatch");
  CAF_CHECK_EQUAL(message_of(res), "protocol version 1 is not supported; this primary speaks 2");
  // The replica's side of the same check.
  replica_handshake replica2{replica_config()};
  CAF_REQUIRE(replica2.make_hello(101).ok());
  primary_handshake primary2{primary_config()};
  auto welcome =
      primary2.on_frame(transmit(*replica_handshake{replica_config()}.make_hello(101)), 50, 500);
  CAF_REQUIRE(welcome.ok());
  welcome->reply.mutable_welcome()->set_protocol_version(3);
  auto refused = replica2.on_frame(transmit(welcome->reply));
  CAF_CHECK_EQUAL(code_of(refused), "version_mismatch");
  CAF_CHECK_EQUAL(message_of(refused), "primary speaks protocol version 3; this replica speaks 2");
}

CAF_TEST(a replica of another cluster is refused naming both clusters) {
  primary_handshake primary{primary_config()};
  auto config = replica_config();
  config.cluster_id = "cluster-b";
  replica_handshake replica{config};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Error"}));
  CAF_CHECK_EQUAL(code_of(out.primary_error), "cluster_mismatch");
  CAF_CHECK_EQUAL(out.primary_error.message(),
                  "replica belongs to cluster 'cluster-b'; this primary serves cluster "
                  "'cluster-a'");
  CAF_CHECK_EQUAL(code_of(out.replica_error), "cluster_mismatch");
}

CAF_TEST(a huge peer supplied name is cut in the error message) {
  primary_handshake primary{primary_config()};
  auto config = replica_config();
  config.cluster_id = std::string(60000, 'x');
  replica_handshake replica{config};
  auto out = run(primary, replica, 101);
  CAF_CHECK_EQUAL(code_of(out.primary_error), "cluster_mismatch");
  CAF_CHECK_EQUAL(out.primary_error.message(),
                  "replica belongs to cluster '" + std::string(128, 'x') +
                      "' (cut, 60000 bytes); this primary serves cluster 'cluster-a'");
  CAF_CHECK_EQUAL(code_of(out.replica_error), "cluster_mismatch");  // the Error got through
}

CAF_TEST(codec negotiation picks the first codec of the primary preference the replica supports) {
  struct example {
    std::vector<codec_id> primary, replica;
    codec_id expected;
  };
  for (auto& ex : std::vector<example>{
           {{codec_id::zstd, codec_id::snappy}, {codec_id::snappy, codec_id::zstd}, codec_id::zstd},
           {{codec_id::snappy, codec_id::zstd},
            {codec_id::zstd, codec_id::snappy},
            codec_id::snappy},
           {{codec_id::zstd, codec_id::snappy}, {codec_id::snappy}, codec_id::snappy},
           {{codec_id::zstd}, {codec_id::snappy}, codec_id::none},
           {{codec_id::zstd, codec_id::snappy}, {}, codec_id::none},
       }) {
    auto pc = primary_config();
    pc.codec_preference = ex.primary;
    auto rc = replica_config();
    rc.codecs = ex.replica;
    primary_handshake primary{pc};
    replica_handshake replica{rc};
    auto out = run(primary, replica, 101);
    CAF_REQUIRE(out.primary && out.replica);
    CAF_CHECK_EQUAL(codec::to_string(out.primary->codec), codec::to_string(ex.expected));
    CAF_CHECK_EQUAL(codec::to_string(out.replica->codec), codec::to_string(ex.expected));
  }
}

CAF_TEST(codec values a newer replica offers are ignored) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config()};
  auto hello = replica.make_hello(101);
  CAF_REQUIRE(hello.ok());
  hello->mutable_hello()->clear_codecs();
  hello->mutable_hello()->add_codecs(static_cast<wire::Codec>(9));
  hello->mutable_hello()->add_codecs(wire::CODEC_SNAPPY);
  auto step = primary.on_frame(transmit(*hello), 50, 500);
  CAF_REQUIRE(step.ok() && step->session);
  CAF_CHECK(step->session->codec == codec_id::snappy);
}

CAF_TEST(a replica refuses a welcome in a codec it did not offer) {
  replica_handshake replica{replica_config()};
  auto hello = replica.make_hello(101);
  CAF_REQUIRE(hello.ok());
  auto welcome = primary_handshake{primary_config()}.on_frame(transmit(*hello), 50, 500);
  CAF_REQUIRE(welcome.ok());
  auto rc = replica_config();
  rc.codecs = {codec_id::snappy};
  replica_handshake picky{rc};
  CAF_REQUIRE(picky.make_hello(101).ok());
  auto res = picky.on_frame(transmit(welcome->reply));  // zstd
  CAF_CHECK_EQUAL(code_of(res), "unsupported_codec");
  CAF_CHECK_EQUAL(message_of(res), "Welcome selects codec zstd, which this replica did not offer");
}

CAF_TEST(a start sequence below first retained is not_retained) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config()};
  auto out = run(primary, replica, 5, {10, 500});
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Error"}));
  CAF_CHECK_EQUAL(code_of(out.primary_error), "not_retained");
  CAF_CHECK_EQUAL(out.primary_error.message(),
                  "sequence 5 is no longer retained; first retained is 10");
  CAF_CHECK_EQUAL(code_of(out.replica_error), "not_retained");
  // At the boundary the replica is served.
  primary_handshake primary2{primary_config()};
  replica_handshake replica2{replica_config()};
  CAF_CHECK(run(primary2, replica2, 10, {10, 500}).replica.has_value());
}

CAF_TEST(with a secret the log is checked only after authentication) {
  primary_handshake primary{primary_config("s3cret")};
  replica_handshake replica{replica_config("s3cret")};
  auto out = run(primary, replica, 5, {10, 500});
  CAF_CHECK_EQUAL(out.frames, (names{"Hello", "Challenge", "AuthResponse", "Error"}));
  CAF_CHECK_EQUAL(code_of(out.primary_error), "not_retained");
  // An unauthenticated peer learns nothing about the log.
  primary_handshake primary2{primary_config("s3cret")};
  replica_handshake impostor{replica_config("guess")};
  out = run(primary2, impostor, 5, {10, 500});
  CAF_CHECK_EQUAL(code_of(out.primary_error), "auth_failed");
}

CAF_TEST(a start sequence beyond the log of the primary is a protocol violation) {
  primary_handshake primary{primary_config()};
  replica_handshake replica{replica_config()};
  auto out = run(primary, replica, 502, {1, 500});
  CAF_CHECK_EQUAL(code_of(out.primary_error), "protocol_violation");
  CAF_CHECK_EQUAL(out.primary_error.message(),
                  "replica asks to start at sequence 502 but this primary's last sequence is 500: "
                  "the replica holds entries the primary does not");
  // last + 1 is what a caught-up replica asks for; an empty primary serves 1.
  primary_handshake primary2{primary_config()};
  replica_handshake replica2{replica_config()};
  CAF_CHECK(run(primary2, replica2, 501, {1, 500}).replica.has_value());
  primary_handshake empty{primary_config()};
  replica_handshake fresh{replica_config()};
  CAF_CHECK(run(empty, fresh, 1, {0, 0}).replica.has_value());
}

CAF_TEST(a hello with impossible fields is refused) {
  struct example {
    void (*change)(wire::Hello&);
    std::string code, message;
  };
  std::vector<example> examples{
      {[](wire::Hello& h) { h.set_start_sequence(0); }, "protocol_violation",
       "Hello.start_sequence is 0; sequences start at 1 (an empty replica asks for 1)"},
      {[](wire::Hello& h) { h.clear_replica_id(); }, "protocol_violation",
       "Hello without a replica_id"},
      {[](wire::Hello& h) { h.set_max_frame_bytes(65536); }, "protocol_violation",
       "Hello.max_frame_bytes 65536 is below the minimum of 1048576 bytes"},
  };
  for (auto& ex : examples) {
    primary_handshake primary{primary_config()};
    auto hello = replica_handshake{replica_config()}.make_hello(101);
    CAF_REQUIRE(hello.ok());
    ex.change(*hello->mutable_hello());
    auto res = primary.on_frame(transmit(*hello), 50, 500);
    CAF_CHECK_EQUAL(code_of(res), ex.code);
    CAF_CHECK_EQUAL(message_of(res), ex.message);
  }
  // With a secret, the client nonce must be a full nonce.
  primary_handshake primary{primary_config("s3cret")};
  auto hello = replica_handshake{replica_config()}.make_hello(101);
  CAF_REQUIRE(hello.ok());
  hello->mutable_hello()->set_client_nonce("short");
  auto res = primary.on_frame(transmit(*hello), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "auth_failed");
  CAF_CHECK_EQUAL(message_of(res),
                  "Hello.client_nonce has 5 bytes; this primary requires "
                  "authentication with a 16-byte nonce");
}

CAF_TEST(the primary refuses frames at the wrong time) {
  primary_handshake primary{primary_config()};
  auto res = primary.on_frame(transmit(make_frame(sample_batch(1, 2))), 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "protocol_violation");
  CAF_CHECK_EQUAL(message_of(res), "Batch before Hello");
  // Failure is sticky: a good Hello afterwards does not revive the connection.
  auto hello = replica_handshake{replica_config()}.make_hello(101);
  CAF_REQUIRE(hello.ok());
  CAF_CHECK_EQUAL(message_of(primary.on_frame(*hello, 50, 500)), "Batch before Hello");
  // An AuthResponse nobody asked for, a second Hello.
  primary_handshake unasked{primary_config()};
  wire::Frame proof;
  proof.mutable_auth_response()->set_proof(std::string(32, '\0'));
  CAF_CHECK_EQUAL(message_of(unasked.on_frame(proof, 50, 500)), "AuthResponse before Hello");
  primary_handshake twice{primary_config()};
  CAF_REQUIRE(twice.on_frame(*hello, 50, 500).ok());
  res = twice.on_frame(*hello, 50, 500);
  CAF_CHECK_EQUAL(code_of(res), "protocol_violation");
  CAF_CHECK_EQUAL(message_of(res), "Hello after the handshake completed");
}

CAF_TEST(the replica refuses frames at the wrong time) {
  replica_handshake early{replica_config()};
  auto welcome = one_of_each()[3];
  CAF_CHECK_EQUAL(message_of(early.on_frame(welcome)), "Welcome before this replica sent Hello");
  replica_handshake replica{replica_config()};
  CAF_REQUIRE(replica.make_hello(101).ok());
  auto res = replica.on_frame(transmit(make_frame(sample_batch(101, 2))));
  CAF_CHECK_EQUAL(code_of(res), "protocol_violation");
  CAF_CHECK_EQUAL(message_of(res), "Batch before Welcome");
  CAF_CHECK(replica.failed() && !replica.peer_refused());
  replica_handshake twice{replica_config()};
  CAF_REQUIRE(twice.make_hello(101).ok());
  CAF_CHECK_EQUAL(code_of(twice.make_hello(101)), "invalid_transition");
  replica_handshake challenged{replica_config("s3cret")};
  CAF_REQUIRE(challenged.make_hello(101).ok());
  auto challenge = one_of_each()[1];
  CAF_REQUIRE(challenged.on_frame(challenge).ok());
  res = challenged.on_frame(challenge);
  CAF_CHECK_EQUAL(code_of(res), "protocol_violation");
  CAF_CHECK_EQUAL(message_of(res), "a second Challenge");
}

CAF_TEST(an error from the primary surfaces as its code and message) {
  replica_handshake replica{replica_config()};
  CAF_REQUIRE(replica.make_hello(101).ok());
  auto res = replica.on_frame(transmit(make_error_frame(
      status{errc::not_retained, "sequence 101 is no longer retained; first retained is 200"})));
  CAF_CHECK_EQUAL(code_of(res), "not_retained");
  CAF_CHECK_EQUAL(message_of(res), "sequence 101 is no longer retained; first retained is 200");
  CAF_CHECK(replica.failed() && replica.peer_refused());
}

CAF_TEST(a replica refuses a welcome with impossible fields) {
  struct example {
    void (*change)(wire::Welcome&);
    std::string code, message;
  };
  std::vector<example> examples{
      {[](wire::Welcome& w) { w.set_cluster_id("cluster-b"); }, "cluster_mismatch",
       "primary serves cluster 'cluster-b'; this replica belongs to cluster 'cluster-a'"},
      {[](wire::Welcome& w) { w.set_start_sequence(102); }, "protocol_violation",
       "Welcome.start_sequence 102 differs from the 101 this replica asked for"},
      {[](wire::Welcome& w) { w.set_last_sequence(99); }, "protocol_violation",
       "Welcome announces the primary's log as 50..99, which cannot serve sequence 101"},
      {[](wire::Welcome& w) { w.set_max_frame_bytes(1000); }, "protocol_violation",
       "Welcome.max_frame_bytes 1000 is below the minimum of 1048576 bytes"},
      {[](wire::Welcome& w) { w.set_heartbeat_interval_ms(0); }, "protocol_violation",
       "Welcome.heartbeat_interval_ms 0 is outside 10..60000 ms"},
      {[](wire::Welcome& w) { w.set_codec(static_cast<wire::Codec>(7)); }, "unsupported_codec",
       "Welcome selects codec 7, which this replica did not offer"},
  };
  for (auto& ex : examples) {
    replica_handshake replica{replica_config()};
    auto hello = replica.make_hello(101);
    CAF_REQUIRE(hello.ok());
    auto welcome = primary_handshake{primary_config()}.on_frame(transmit(*hello), 50, 500);
    CAF_REQUIRE(welcome.ok());
    ex.change(*welcome->reply.mutable_welcome());
    auto res = replica.on_frame(transmit(welcome->reply));
    CAF_CHECK_EQUAL(code_of(res), ex.code);
    CAF_CHECK_EQUAL(message_of(res), ex.message);
  }
}

CAF_TEST(configurations are validated) {
  CAF_CHECK(validate(primary_config()).ok());
  CAF_CHECK(validate(replica_config("s3cret")).ok());
  auto pc = primary_config("");
  CAF_CHECK_EQUAL(code_of(validate(pc)), "invalid_argument");
  pc = primary_config();
  pc.heartbeat_interval_ms = 0;
  CAF_CHECK_EQUAL(message_of(validate(pc)),
                  "primary: heartbeat_interval_ms 0 is outside 10..60000 ms");
  pc = primary_config();
  pc.max_frame_bytes = 65536;
  CAF_CHECK_EQUAL(message_of(validate(pc)),
                  "primary: max_frame_bytes 65536 is below the minimum of 1048576 bytes");
  pc = primary_config();
  pc.codec_preference = {static_cast<codec_id>(5)};
  CAF_CHECK_EQUAL(code_of(validate(pc)), "invalid_argument");
  auto rc = replica_config();
  rc.replica_id.clear();
  CAF_CHECK_EQUAL(message_of(validate(rc)), "replica: replica_id is empty");
}

// -- read sizes ---------------------------------------------------------------------------

CAF_TEST(a read_sizer grows on full reads and shrinks after a run of small ones) {
  read_sizer sizer{4096, 64 * 1024};
  CAF_CHECK_EQUAL(sizer.size(), 4096u);
  // Full reads double it, up to the maximum.
  CAF_CHECK(sizer.observe(4096));
  CAF_CHECK_EQUAL(sizer.size(), 8192u);
  for (int i = 0; i < 10; ++i) (void)sizer.observe(sizer.size());
  CAF_CHECK_EQUAL(sizer.size(), 64u * 1024);
  CAF_CHECK(!sizer.observe(64 * 1024));
  // Reads of a quarter or more keep it; a run of smaller ones halves it.
  for (uint32_t i = 0; i < 3 * read_sizer::shrink_after; ++i) CAF_CHECK(!sizer.observe(16 * 1024));
  CAF_CHECK_EQUAL(sizer.size(), 64u * 1024);
  for (uint32_t i = 1; i < read_sizer::shrink_after; ++i) CAF_CHECK(!sizer.observe(100));
  CAF_CHECK(!sizer.observe(16 * 1024));  // the run is broken: counting starts again
  for (uint32_t i = 1; i < read_sizer::shrink_after; ++i) CAF_CHECK(!sizer.observe(100));
  CAF_CHECK(sizer.observe(100));
  CAF_CHECK_EQUAL(sizer.size(), 32u * 1024);
  // Never below the minimum.
  for (int i = 0; i < 100 * int{read_sizer::shrink_after}; ++i) (void)sizer.observe(1);
  CAF_CHECK_EQUAL(sizer.size(), 4096u);
}

CAF_TEST(frame buffers come back with their last holder and the pool stays bounded) {
  auto pool = std::make_shared<frame_buffers>();
  auto first = pool->take(1000);
  CAF_CHECK_EQUAL(first.size(), 1000u);
  const char* bytes = first.data();
  {
    auto owner = pool->share(std::move(first));
    auto copy = owner;  // the applier's batch, say
    owner.reset();
    // Still held: a new buffer is another one.
    auto other = pool->take(10);
    CAF_CHECK(other.data() != bytes);
  }
  // Back with the last reference, and handed out again for any size that fits.
  auto again = pool->take(500);
  CAF_CHECK_EQUAL(again.size(), 500u);
  CAF_CHECK(again.data() == bytes);
  // A buffer above max_kept_bytes is freed, not kept.
  (void)pool->share(pool->take(frame_buffers::max_kept_bytes + 1));
  auto fresh = pool->take(1);
  CAF_CHECK(fresh.capacity() < frame_buffers::max_kept_bytes);
  // At most max_kept wait in the pool.
  for (size_t i = 0; i < 2 * frame_buffers::max_kept; ++i) pool->give_back(std::vector<char>(64));
  size_t reused = 0;
  for (size_t i = 0; i < 2 * frame_buffers::max_kept; ++i)
    if (pool->take(1).capacity() >= 64) ++reused;
  CAF_CHECK_EQUAL(reused, frame_buffers::max_kept);
}
