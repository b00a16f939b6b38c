// Fuzz target for everything a peer's bytes reach before an actor sees them:
// the incremental frame decoder (codec/frame.hpp), the Frame protobuf and the
// validating conversions, handshakes and ack validator of actors/wire.hpp, and
// decompression with a declared size (codec/codec.hpp).
//
// Input, first byte even: a byte stream of frames.
//   [0] mode   [1] config   [2] cut count (low 4 bits)   [3..] cuts, u16 each
//   then the stream, fed to the decoder in pieces split at the cuts.
// config bits 0-1: decoder limit (64 KiB, 1, 16, 300 bytes); bit 2: raise it
// to 16 MiB after the first frame (as Welcome does); bits 3-4: the session's
// codec; bit 5: small uncompressed limit (64 KiB instead of 4 MiB).
// Input, first byte odd: one block to decompress.
//   [0] mode   [1] codec (bits 0-1), size unknown (bit 7)   [2..5] declared
//   size   [6..9] output limit (mod 4 MiB + 1)   then the compressed block.
//
// Properties, besides "no crash, no hang, no allocation above the limits":
// * the frames and the error do not depend on how the stream is split, and
//   the decoder never buffers more than one frame;
// * every error is a walrus status with a code the contract names, and its
//   Error frame fits the 64 KiB handshake limit;
// * a decoded Frame re-encodes to a frame that decodes to the same Frame;
// * parse_batch_frame, where it takes a body on, reads the Batch protobuf
//   reads, with the same outcome of from_wire, its records in place;
// * a Batch that passes from_wire is well formed and survives to_wire; its
//   records, once decompressed, pass check_batch_records only as exactly
//   the batch's records;
// * the ack validator never accepts an ack beyond what was sent or going
//   back, and leaves its state alone when it refuses;
// * a handshake that finished or failed refuses every further frame;
// * decompression never produces more than min(declared, limit); a valid
//   block decompressed with a limit one byte short is refused.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/batch_records.hpp"
#include "actors/wire.hpp"
#include "codec/codec.hpp"
#include "codec/frame.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace walrus;
using walrus::fuzz::byte_reader;
using walrus::fuzz::check_error;
namespace wf = walrus::wire_format;
using body_case = wire::Frame::BodyCase;

constexpr uint32_t decoder_limits[] = {codec::handshake_max_frame_bytes, 1, 16, 300};
constexpr uint64_t first_retained = 3;
constexpr uint64_t last_durable = 1000;
constexpr uint64_t replica_start = 5;  // the replica's Hello asks for this
constexpr size_t max_output_bytes = 4 * 1024 * 1024;

// -- refusals ---------------------------------------------------------------------

// The Error frame a broker sends for `error` always fits the handshake limit,
// and the peer can read it (its message is valid UTF-8, cut or not).
void check_error_frame(const status& error) {
  codec::frame_encoder handshake_encoder{codec::handshake_max_frame_bytes};
  std::string out;
  WALRUS_FUZZ_CHECK(wf::encode_frame(wf::make_error_frame(error), handshake_encoder, out).ok());
  wire::Frame back;
  auto body = std::string_view{out}.substr(codec::frame_header_bytes);
  WALRUS_FUZZ_CHECK(wf::decode_frame(body, back).ok() && back.has_error());
  WALRUS_FUZZ_CHECK(back.error().code() == static_cast<uint32_t>(error.code()));
}

void check_refusal(const status& error, std::initializer_list<errc> allowed = {}) {
  check_error(error, allowed);
  check_error_frame(error);
}

// A refusal that may be the peer's own Error: its code is a walrus code, its
// message whatever the peer wrote (possibly nothing).
void check_peer_refusal(const status& error) {
  WALRUS_FUZZ_CHECK(!error.ok());
  WALRUS_FUZZ_CHECK(std::string_view{to_string(error.code())} != "unknown_error");
  check_error_frame(error);
}

void check_fits_handshake(const wire::Frame& frame) {
  codec::frame_encoder handshake_encoder{codec::handshake_max_frame_bytes};
  std::string out;
  WALRUS_FUZZ_CHECK(wf::encode_frame(frame, handshake_encoder, out).ok());
}

// -- one peer's view of the frames -------------------------------------------------

wf::primary_handshake_config primary_config(bool with_secret) {
  wf::primary_handshake_config config;
  config.cluster_id = "fuzz-cluster";
  config.primary_id = "fuzz-primary";
  config.epoch = 7;
  config.codec_preference = {codec::codec_id::zstd, codec::codec_id::snappy, codec::codec_id::none};
  config.heartbeat_interval_ms = 100;
  if (with_secret) config.secret = "fuzz-secret";
  return config;
}

wf::replica_handshake_config replica_config(bool with_secret) {
  wf::replica_handshake_config config;
  config.cluster_id = "fuzz-cluster";
  config.replica_id = "fuzz-replica";
  config.epoch = 7;
  config.codecs = {codec::codec_id::snappy, codec::codec_id::zstd};
  if (with_secret) config.secret = "fuzz-secret";
  return config;
}

// Both ends of a connection see the same frames: the primary's handshake and
// validator, the replica's handshake and batch checks.
struct peer_model {
  explicit peer_model(wf::batch_limits session_limits) : limits(session_limits) {
    for (auto& r : replicas) WALRUS_FUZZ_CHECK(r.make_hello(replica_start).ok());
  }

  wf::primary_handshake primaries[2] = {wf::primary_handshake{primary_config(false)},
                                        wf::primary_handshake{primary_config(true)}};
  wf::replica_handshake replicas[2] = {wf::replica_handshake{replica_config(false)},
                                       wf::replica_handshake{replica_config(true)}};
  wf::ack_validator validator{replica_start};
  wf::batch_limits limits;
  std::unique_ptr<codec::block_codec> codecs[3];
  std::string plain;
  std::vector<wal::record_view> records;
};

void check_primary_session(const wf::primary_session& s) {
  WALRUS_FUZZ_CHECK(!s.replica_id.empty());
  WALRUS_FUZZ_CHECK(s.start_sequence >= first_retained && s.start_sequence - 1 <= last_durable);
  WALRUS_FUZZ_CHECK(s.send_max_frame_bytes >= wf::min_max_frame_bytes);
  WALRUS_FUZZ_CHECK(s.max_uncompressed_bytes == wf::uncompressed_limit(s.send_max_frame_bytes));
  WALRUS_FUZZ_CHECK(s.max_uncompressed_bytes <= wf::max_uncompressed_bytes);
  WALRUS_FUZZ_CHECK(codec::codec_id_from_wire(static_cast<uint32_t>(s.codec)).ok());
}

void run_primary_handshakes(peer_model& m, const wire::Frame& frame) {
  for (auto& h : m.primaries) {
    bool over = h.done() || h.failed();
    auto step = h.on_frame(frame, first_retained, last_durable);
    if (!step) {
      WALRUS_FUZZ_CHECK(h.failed());
      // A peer's Error carries the peer's code; our own refusals name ours.
      if (frame.has_error() || over)
        check_peer_refusal(step.error());
      else
        check_refusal(step.error(),
                      {errc::version_mismatch, errc::cluster_mismatch, errc::auth_failed,
                       errc::not_retained, errc::protocol_violation});
      continue;
    }
    WALRUS_FUZZ_CHECK(!over);
    check_fits_handshake(step->reply);
    if (step->session) {
      WALRUS_FUZZ_CHECK(h.done() && step->reply.has_welcome());
      check_primary_session(*step->session);
    } else {
      WALRUS_FUZZ_CHECK(step->reply.has_challenge());
    }
  }
}

void run_replica_handshakes(peer_model& m, const wire::Frame& frame) {
  for (auto& h : m.replicas) {
    bool over = h.done() || h.failed();
    auto step = h.on_frame(frame);
    if (!step) {
      WALRUS_FUZZ_CHECK(h.failed());
      if (frame.has_error() || over)
        check_peer_refusal(step.error());
      else
        check_refusal(step.error(),
                      {errc::version_mismatch, errc::cluster_mismatch, errc::auth_failed,
                       errc::unsupported_codec, errc::protocol_violation});
      continue;
    }
    WALRUS_FUZZ_CHECK(!over);
    if (step->reply) check_fits_handshake(*step->reply);
    if (!step->session) continue;
    const auto& s = *step->session;
    WALRUS_FUZZ_CHECK(h.done());
    WALRUS_FUZZ_CHECK(s.start_sequence == replica_start);
    WALRUS_FUZZ_CHECK(s.first_retained <= replica_start && replica_start - 1 <= s.last_sequence);
    WALRUS_FUZZ_CHECK(s.send_max_frame_bytes >= wf::min_max_frame_bytes);
    WALRUS_FUZZ_CHECK(s.heartbeat_interval_ms >= wf::min_heartbeat_interval_ms &&
                      s.heartbeat_interval_ms <= wf::max_heartbeat_interval_ms);
    WALRUS_FUZZ_CHECK(s.codec == codec::codec_id::none || s.codec == codec::codec_id::snappy ||
                      s.codec == codec::codec_id::zstd);
  }
}

// After Welcome, who may send what (docs/protocol.md §3).
void check_roles(const wire::Frame& frame) {
  auto from_primary = wf::check_session_frame(frame, wf::peer_role::primary);
  auto from_replica = wf::check_session_frame(frame, wf::peer_role::replica);
  bool primary_ok = false, replica_ok = false;
  switch (frame.body_case()) {
    case body_case::kBatch:
    case body_case::kSnapshotBegin:
    case body_case::kSnapshotChunk:
    case body_case::kSnapshotEnd: primary_ok = true; break;
    case body_case::kAck:
    case body_case::kNack: replica_ok = true; break;
    case body_case::kHeartbeat:
    case body_case::kError: primary_ok = replica_ok = true; break;
    default: break;
  }
  WALRUS_FUZZ_CHECK(from_primary.ok() == primary_ok && from_replica.ok() == replica_ok);
  if (!primary_ok) check_refusal(from_primary, {errc::protocol_violation});
  if (!replica_ok) check_refusal(from_replica, {errc::protocol_violation});
}

// What the applier does with a received batch (actors/applier.cpp, verify).
void verify_like_applier(peer_model& m, const batch& b) {
  auto id = codec::codec_id_from_wire(b.codec);
  WALRUS_FUZZ_CHECK(id.ok());
  auto& codec = m.codecs[static_cast<size_t>(*id)];
  if (!codec) {
    auto made = codec::make_codec(*id);
    WALRUS_FUZZ_CHECK(made.ok());
    codec = std::move(*made);
  }
  WALRUS_FUZZ_CHECK(b.records.size() == 1);
  auto st = codec->decompress(b.records[0].bytes, b.uncompressed_size,
                              m.limits.max_uncompressed_bytes, m.plain);
  if (!st.ok()) {
    check_refusal(st, {errc::decompression_failed, errc::size_limit_exceeded});
    WALRUS_FUZZ_CHECK(m.plain.empty());
    return;
  }
  WALRUS_FUZZ_CHECK(m.plain.size() == b.uncompressed_size);
  auto checked = check_batch_records(b, {std::string_view{m.plain}}, m.records);
  if (!checked.ok())
    return check_refusal(checked, {errc::malformed_frame, errc::checksum_mismatch});
  // Accepted: exactly the batch's records, one after the other, covering
  // every byte, and the last one committing unless more fragments follow.
  auto count = b.last_sequence - b.first_sequence + 1;
  WALRUS_FUZZ_CHECK(m.records.size() == count);
  size_t bytes = 0;
  for (size_t i = 0; i < m.records.size(); ++i) {
    WALRUS_FUZZ_CHECK(m.records[i].sequence == b.first_sequence + i);
    WALRUS_FUZZ_CHECK(m.records[i].frame == m.plain.data() + bytes);
    bytes += m.records[i].encoded().size();
  }
  WALRUS_FUZZ_CHECK(bytes == m.plain.size());
  bool more = b.part == fragment::first || b.part == fragment::middle;
  WALRUS_FUZZ_CHECK(m.records.back().commit() != more);
}

void on_batch(peer_model& m, const wire::Batch& in) {
  auto copy = in;
  auto b = wf::from_wire(std::move(copy), m.limits);
  if (!b)
    return check_refusal(
        b.error(), {errc::malformed_frame, errc::unsupported_codec, errc::size_limit_exceeded});
  auto count = b->last_sequence - b->first_sequence + 1;
  WALRUS_FUZZ_CHECK(b->first_sequence >= 1 && b->first_sequence <= b->last_sequence);
  WALRUS_FUZZ_CHECK(b->uncompressed_size <= m.limits.max_uncompressed_bytes);
  WALRUS_FUZZ_CHECK(count <= b->uncompressed_size / wal::record_header_bytes);
  WALRUS_FUZZ_CHECK(b->codec == static_cast<uint8_t>(m.limits.codec));
  verify_like_applier(m, *b);
  m.validator.note_sent(b->last_sequence);  // as the primary that sent it would
  // to_wire and back: the same batch.
  auto first = b->first_sequence, last = b->last_sequence;
  auto again = wf::from_wire(wf::to_wire(*b), m.limits);
  WALRUS_FUZZ_CHECK(again.ok());
  WALRUS_FUZZ_CHECK(again->first_sequence == first && again->last_sequence == last);
  WALRUS_FUZZ_CHECK(again->records.size() == 1 && again->records[0].bytes == b->records[0].bytes);
}

void on_ack(peer_model& m, const wire::Ack& in) {
  auto a = wf::from_wire(in);
  auto before = m.validator.last_ack();
  auto sent = m.validator.sent_sequence();
  auto st = m.validator.check(a);
  const auto& now = m.validator.last_ack();
  if (!st.ok()) {
    check_refusal(st, {errc::protocol_violation});
    WALRUS_FUZZ_CHECK(now.received_sequence == before.received_sequence &&
                      now.durable_sequence == before.durable_sequence &&
                      now.applied_sequence == before.applied_sequence);
    return;
  }
  WALRUS_FUZZ_CHECK(now.received_sequence == a.received_sequence && a.received_sequence <= sent);
  WALRUS_FUZZ_CHECK(a.durable_sequence <= a.received_sequence &&
                    a.applied_sequence <= a.received_sequence);
  WALRUS_FUZZ_CHECK(a.received_sequence >= before.received_sequence &&
                    a.durable_sequence >= before.durable_sequence &&
                    a.applied_sequence >= before.applied_sequence);
  auto back = wf::from_wire(wf::to_wire(a));
  WALRUS_FUZZ_CHECK(back.received_sequence == a.received_sequence &&
                    back.durable_sequence == a.durable_sequence &&
                    back.applied_sequence == a.applied_sequence &&
                    back.timestamp_us == a.timestamp_us);
}

void on_nack(peer_model& m, const wire::Nack& in) {
  auto n = wf::from_wire(in);
  if (!n) return check_refusal(n.error(), {errc::malformed_frame});
  WALRUS_FUZZ_CHECK(n->from_sequence >= 1 && n->code != errc::none);
  auto st = m.validator.check(*n);
  if (!st.ok())
    check_refusal(st, {errc::protocol_violation});
  else
    WALRUS_FUZZ_CHECK(n->from_sequence > m.validator.last_ack().received_sequence &&
                      n->from_sequence - 1 <= m.validator.sent_sequence());
  // Back to the wire: the reason is cut at a UTF-8 boundary, the rest kept.
  auto wire_nack = wf::to_wire(*n);
  WALRUS_FUZZ_CHECK(wire_nack.reason().size() <= wf::max_error_message_bytes);
  WALRUS_FUZZ_CHECK(n->reason.compare(0, wire_nack.reason().size(), wire_nack.reason()) == 0);
  auto back = wf::from_wire(wire_nack);
  WALRUS_FUZZ_CHECK(back.ok() && back->from_sequence == n->from_sequence && back->code == n->code);
}

void check_reencodes(const wire::Frame& frame) {
  if (frame.ByteSizeLong() > codec::default_max_frame_bytes) return;
  codec::frame_encoder encoder{codec::default_max_frame_bytes};
  std::string out;
  WALRUS_FUZZ_CHECK(wf::encode_frame(frame, encoder, out).ok());
  codec::frame_decoder decoder{codec::default_max_frame_bytes};
  decoder.feed(out.data(), out.size());
  auto body = decoder.next();
  WALRUS_FUZZ_CHECK(body.ok() && body->has_value());
  wire::Frame again;
  WALRUS_FUZZ_CHECK(wf::decode_frame(**body, again).ok());
  WALRUS_FUZZ_CHECK(again.SerializeAsString() == frame.SerializeAsString());
  auto rest = decoder.next();
  WALRUS_FUZZ_CHECK(rest.ok() && !rest->has_value() && decoder.end_of_stream().ok());
}

// The in-place Batch parser and protobuf agree: what the first takes on,
// the second reads as the same Batch with the same outcome of from_wire.
void check_in_place_batch(const peer_model& m, std::string_view body, const status& decoded,
                          const wire::Frame& frame) {
  auto fast = wf::parse_batch_frame(body, nullptr, m.limits);
  if (fast && !*fast) return;  // not taken on: protobuf alone decides
  WALRUS_FUZZ_CHECK(decoded.ok() && frame.has_batch());
  auto copy = frame.batch();
  auto slow = wf::from_wire(std::move(copy), m.limits);
  WALRUS_FUZZ_CHECK(fast.ok() == slow.ok());
  if (!slow) {
    WALRUS_FUZZ_CHECK(fast.error().code() == slow.error().code() &&
                      fast.error().message() == slow.error().message());
    return;
  }
  const auto& a = **fast;
  const auto& b = *slow;
  WALRUS_FUZZ_CHECK(a.first_sequence == b.first_sequence && a.last_sequence == b.last_sequence &&
                    a.codec == b.codec && a.part == b.part &&
                    a.uncompressed_size == b.uncompressed_size && a.sent_at_us == b.sent_at_us);
  WALRUS_FUZZ_CHECK(a.records.size() == 1 && a.records[0].bytes == b.records[0].bytes);
  WALRUS_FUZZ_CHECK(a.records[0].bytes.empty() ||
                    (a.records[0].bytes.data() >= body.data() &&
                     a.records[0].bytes.data() + a.records[0].size() <= body.data() + body.size()));
}

void on_body(peer_model& m, std::string_view body) {
  wire::Frame frame;
  auto decoded = wf::decode_frame(body, frame);
  check_in_place_batch(m, body, decoded, frame);
  if (!decoded.ok()) {
    check_refusal(decoded, {errc::malformed_frame, errc::unknown_frame});
    WALRUS_FUZZ_CHECK(frame.body_case() == body_case::BODY_NOT_SET);
    return;
  }
  WALRUS_FUZZ_CHECK(frame.body_case() != body_case::BODY_NOT_SET);
  check_reencodes(frame);
  check_roles(frame);
  run_primary_handshakes(m, frame);
  run_replica_handshakes(m, frame);
  switch (frame.body_case()) {
    case body_case::kBatch: return on_batch(m, frame.batch());
    case body_case::kAck: return on_ack(m, frame.ack());
    case body_case::kNack: return on_nack(m, frame.nack());
    case body_case::kHeartbeat: {
      auto hb = wf::from_wire(frame.heartbeat());
      auto back = wf::from_wire(wf::to_wire(hb));
      WALRUS_FUZZ_CHECK(back.timestamp_us == hb.timestamp_us &&
                        back.last_sequence == hb.last_sequence);
      return;
    }
    case body_case::kError: return check_peer_refusal(wf::from_wire(frame.error()));
    default: return;
  }
}

// -- the frame stream ----------------------------------------------------------------

struct decoded_stream {
  std::vector<std::string> bodies;
  std::string error;  // the decoder's error, empty when none
  std::string end;    // end_of_stream()'s error, empty when ok
};

// Feeds `stream` in pieces ending at `cuts` (ascending), handing each body to
// `visit` while its view is valid.
template <class Visit>
decoded_stream decode(std::string_view stream, const std::vector<size_t>& cuts, uint32_t limit,
                      bool raise_after_first, Visit&& visit) {
  codec::frame_decoder decoder{limit};
  decoded_stream out;
  size_t at = 0;
  for (size_t i = 0; i <= cuts.size() && out.error.empty(); ++i) {
    size_t end = i < cuts.size() ? cuts[i] : stream.size();
    decoder.feed(stream.data() + at, end - at);
    at = end;
    for (;;) {
      auto body = decoder.next();
      if (!body) {
        check_refusal(body.error(), {errc::frame_too_large, errc::malformed_frame});
        WALRUS_FUZZ_CHECK(decoder.failed() && decoder.buffered_bytes() == 0);
        out.error = body.error().to_string();
        break;
      }
      if (!body->has_value()) break;
      std::string_view view = **body;
      WALRUS_FUZZ_CHECK(!view.empty() && view.size() <= decoder.max_frame_bytes());
      out.bodies.emplace_back(view);
      visit(view);
      if (raise_after_first && out.bodies.size() == 1)
        decoder.set_max_frame_bytes(codec::default_max_frame_bytes);
    }
    WALRUS_FUZZ_CHECK(decoder.buffered_bytes() <=
                      codec::frame_header_bytes + size_t{decoder.max_frame_bytes()});
    WALRUS_FUZZ_CHECK(decoder.buffered_bytes() <= end);
  }
  auto end = decoder.end_of_stream();
  if (!end.ok()) {
    check_refusal(end, {errc::frame_too_large, errc::malformed_frame});
    out.end = end.to_string();
  }
  if (decoder.failed()) {  // sticky: more input changes nothing
    decoder.feed(stream.data(), stream.size());
    auto again = decoder.next();
    WALRUS_FUZZ_CHECK(!again.ok() && again.error().to_string() == out.error);
  }
  return out;
}

void fuzz_stream(byte_reader& in) {
  auto config = in.u8();
  auto cut_count = in.u8() & 0x0F;
  std::vector<uint16_t> raw_cuts;
  for (int i = 0; i < cut_count; ++i) raw_cuts.push_back(in.u16());
  auto stream = in.rest();
  std::vector<size_t> cuts;
  for (auto c : raw_cuts) cuts.push_back(stream.empty() ? 0 : c % (stream.size() + 1));
  std::sort(cuts.begin(), cuts.end());

  uint32_t limit = decoder_limits[config & 3];
  bool raise = (config & 4) != 0;
  wf::batch_limits limits;
  limits.codec = static_cast<codec::codec_id>(((config >> 3) & 3) % 3);
  limits.max_uncompressed_bytes =
      (config & 0x20) != 0 ? 64 * 1024 : wf::uncompressed_limit(wf::min_max_frame_bytes);

  peer_model model{limits};
  auto split =
      decode(stream, cuts, limit, raise, [&](std::string_view body) { on_body(model, body); });
  auto whole = decode(stream, {}, limit, raise, [](std::string_view) {});
  WALRUS_FUZZ_CHECK(split.bodies == whole.bodies);
  WALRUS_FUZZ_CHECK(split.error == whole.error && split.end == whole.end);
  if (stream.size() <= 512) {
    std::vector<size_t> every_byte;
    for (size_t i = 1; i < stream.size(); ++i) every_byte.push_back(i);
    auto bytes = decode(stream, every_byte, limit, raise, [](std::string_view) {});
    WALRUS_FUZZ_CHECK(bytes.bodies == whole.bodies);
    WALRUS_FUZZ_CHECK(bytes.error == whole.error && bytes.end == whole.end);
  }
}

// -- decompression ---------------------------------------------------------------------

std::unique_ptr<codec::block_codec> make(codec::codec_id id) {
  auto made = codec::make_codec(id, 1);
  WALRUS_FUZZ_CHECK(made.ok());
  return std::move(*made);
}

void fuzz_decompress(byte_reader& in) {
  auto selector = in.u8();
  auto id = static_cast<codec::codec_id>((selector & 3) % 3);
  bool size_unknown = (selector & 0x80) != 0;
  uint32_t declared = in.u32();
  size_t max_output = in.u32() % (max_output_bytes + 1);
  auto input = in.rest();
  auto codec = make(id);

  size_t expected = size_unknown ? codec::block_codec::unknown_size : declared;
  size_t limit = std::min(expected, max_output);
  std::string output;
  auto st = codec->decompress(input, expected, max_output, output);
  // Nothing above the limit was ever allocated (string growth may double).
  WALRUS_FUZZ_CHECK(output.capacity() <= 2 * (limit + 1) + 32);
  if (!st.ok()) {
    check_refusal(st, {errc::size_limit_exceeded, errc::decompression_failed});
    WALRUS_FUZZ_CHECK(output.empty());
  } else {
    WALRUS_FUZZ_CHECK(output.size() <= limit);
    WALRUS_FUZZ_CHECK(size_unknown || output.size() == declared);
    // What decompressed compresses and comes back the same.
    std::string again, back;
    WALRUS_FUZZ_CHECK(codec->compress(output, again).ok());
    WALRUS_FUZZ_CHECK(codec->decompress(again, output.size(), output.size(), back).ok());
    WALRUS_FUZZ_CHECK(back == output);
  }

  // The payload as plain data: it round-trips, and with a limit one byte
  // short of its size (a block that decodes to more than it may) is refused
  // before anything is produced.
  std::string packed, unpacked;
  WALRUS_FUZZ_CHECK(codec->compress(input, packed).ok());
  WALRUS_FUZZ_CHECK(packed.size() <= codec->compress_bound(input.size()));
  WALRUS_FUZZ_CHECK(codec->decompress(packed, input.size(), input.size(), unpacked).ok());
  WALRUS_FUZZ_CHECK(unpacked == input);
  if (input.empty()) return;
  std::string bomb;
  auto refused =
      codec->decompress(packed, codec::block_codec::unknown_size, input.size() - 1, bomb);
  check_refusal(refused, {errc::size_limit_exceeded});
  WALRUS_FUZZ_CHECK(bomb.empty() && bomb.capacity() <= 2 * input.size() + 32);
  refused = codec->decompress(packed, input.size() - 1, max_output_bytes, bomb);
  check_refusal(refused, {errc::size_limit_exceeded});
}

}  // namespace

int walrus_fuzz_frame(const uint8_t* data, size_t size) {
  byte_reader in{data, size};
  if (in.u8() % 2 == 0)
    fuzz_stream(in);
  else
    fuzz_decompress(in);
  return 0;
}

#ifdef WALRUS_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  return walrus_fuzz_frame(d, n);
}
#endif
