#include "actors/wire.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

#include "actors/auth.hpp"
#include "base/varint.hpp"
#include "wal/format.hpp"

namespace walrus::wire_format {

namespace {

using body_case = wire::Frame::BodyCase;

std::string num(uint64_t value) {
  return std::to_string(value);
}

// A Batch with every field of `in` but the records (the large field,
// which the callers copy as each needs).
wire::Batch batch_head(const batch& in) {
  wire::Batch out;
  out.set_first_sequence(in.first_sequence);
  out.set_last_sequence(in.last_sequence);
  out.set_codec(static_cast<wire::Codec>(in.codec));
  out.set_uncompressed_size(in.uncompressed_size);
  out.set_fragment(static_cast<wire::Fragment>(in.part));
  out.set_sent_at_us(in.sent_at_us);
  return out;
}

// The longest prefix of `text` of at most `max_bytes` that does not split a
// UTF-8 sequence (proto3 strings must stay valid UTF-8).
std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// A peer-supplied name inside an error message: quoted and kept short, so
// that the Error naming it still fits a handshake frame.
std::string quoted(std::string_view name) {
  constexpr size_t max_shown = 128;
  auto shown = utf8_prefix(name, max_shown);
  std::string out = "'" + std::string(shown) + "'";
  if (shown.size() < name.size()) out += " (cut, " + num(name.size()) + " bytes)";
  return out;
}

std::string hex_prefix(std::string_view bytes, size_t max_bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max_bytes; ++i) {
    auto byte = static_cast<unsigned char>(bytes[i]);
    if (i > 0) out += ' ';
    out += digits[byte >> 4];
    out += digits[byte & 0xF];
  }
  if (bytes.size() > max_bytes) out += " ...";
  return out;
}

bool is_walrus_code(uint32_t code) noexcept {
  if (code == 0 || code > std::numeric_limits<uint8_t>::max()) return false;
  return std::string_view{to_string(static_cast<errc>(code))} != "unknown_error";
}

std::string batch_name(uint64_t first, uint64_t last) {
  return "batch " + num(first) + ".." + num(last);
}

status violation(std::string message) {
  return {errc::protocol_violation, std::move(message)};
}

}  // namespace

uint32_t uncompressed_limit(uint32_t max_frame_bytes) noexcept {
  return static_cast<uint32_t>(
      std::min<uint64_t>(uint64_t{max_frame_bytes} * 4, max_uncompressed_bytes));
}

uint32_t peer_timeout_ms(uint32_t heartbeat_interval_ms) noexcept {
  auto timeout = std::max<uint64_t>(uint64_t{heartbeat_interval_ms} * 3, min_peer_timeout_ms);
  return static_cast<uint32_t>(std::min<uint64_t>(timeout, std::numeric_limits<uint32_t>::max()));
}

// -- frames -------------------------------------------------------------------

const char* frame_name(const wire::Frame& frame) noexcept {
  switch (frame.body_case()) {
    case body_case::kHello: return "Hello";
    case body_case::kChallenge: return "Challenge";
    case body_case::kAuthResponse: return "AuthResponse";
    case body_case::kWelcome: return "Welcome";
    case body_case::kBatch: return "Batch";
    case body_case::kAck: return "Ack";
    case body_case::kNack: return "Nack";
    case body_case::kHeartbeat: return "Heartbeat";
    case body_case::kSnapshotBegin: return "SnapshotBegin";
    case body_case::kSnapshotChunk: return "SnapshotChunk";
    case body_case::kSnapshotEnd: return "SnapshotEnd";
    case body_case::kError: return "Error";
    case body_case::BODY_NOT_SET: return "no body";
  }
  return "no body";
}

status encode_frame(const wire::Frame& frame, const codec::frame_encoder& encoder,
                    std::string& out) {
  if (frame.body_case() == body_case::BODY_NOT_SET)
    return {errc::invalid_argument, "refusing to encode a Frame with no body"};
  auto body_bytes = frame.ByteSizeLong();
  if (body_bytes > encoder.max_frame_bytes())
    return {errc::frame_too_large, std::string(frame_name(frame)) + " frame of " + num(body_bytes) +
                                       " bytes exceeds the peer's limit of " +
                                       num(encoder.max_frame_bytes()) + " bytes"};
  auto size_before = out.size();
  // Geometric growth: while CAF is still writing, batches pile up in `out`,
  // and reserving exactly would copy the whole buffer on every append.
  auto needed = size_before + codec::frame_header_bytes + body_bytes;
  if (out.capacity() < needed) out.reserve(std::max<size_t>(needed, 2 * out.capacity()));
  auto header_offset = encoder.begin_frame(out);
  if (!frame.AppendToString(&out)) {
    out.resize(size_before);
    return {errc::invalid_argument,
            std::string("could not serialize a ") + frame_name(frame) + " frame"};
  }
  auto st = encoder.end_frame(out, header_offset);
  assert(st.ok() ? out.size() == size_before + codec::frame_header_bytes + body_bytes
                 : out.size() == size_before);
  return st;
}

status batch_frame_prefix(const batch& in, const codec::frame_encoder& encoder,
                          std::string& prefix) {
  using google::protobuf::io::CodedOutputStream;
  constexpr uint8_t length_delimited = 2;  // protobuf wire type of messages and bytes
  constexpr auto batch_tag =
      static_cast<uint8_t>(wire::Frame::kBatchFieldNumber << 3 | length_delimited);
  constexpr auto records_tag =
      static_cast<uint8_t>(wire::Batch::kRecordsFieldNumber << 3 | length_delimited);
  static_assert(wire::Frame::kBatchFieldNumber < 16 && wire::Batch::kRecordsFieldNumber < 16,
                "one-byte tags");
  assert(in.first_sequence >= 1 && in.first_sequence <= in.last_sequence);
  // Everything but the records, serialized by protobuf (small).
  auto head = batch_head(in);
  uint64_t records_bytes = in.records_bytes();
  uint64_t batch_bytes =
      head.ByteSizeLong() + 1 + CodedOutputStream::VarintSize64(records_bytes) + records_bytes;
  uint64_t body_bytes = 1 + CodedOutputStream::VarintSize64(batch_bytes) + batch_bytes;
  if (body_bytes > encoder.max_frame_bytes())
    return {errc::frame_too_large, "Batch frame of " + num(body_bytes) +
                                       " bytes exceeds the peer's limit of " +
                                       num(encoder.max_frame_bytes()) + " bytes"};
  // Header, the Batch's tag and length, the head, the records' tag and length.
  uint8_t varints[2 * (1 + 10)];
  auto size_before = prefix.size();
  prefix.resize(size_before + codec::frame_header_bytes);
  codec::write_frame_length(prefix.data() + size_before, static_cast<uint32_t>(body_bytes));
  uint8_t* at = varints;
  *at++ = batch_tag;
  at = CodedOutputStream::WriteVarint64ToArray(batch_bytes, at);
  prefix.append(reinterpret_cast<const char*>(varints), static_cast<size_t>(at - varints));
  auto head_at = prefix.size();
  prefix.resize(head_at + head.GetCachedSize());
  head.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(prefix.data() + head_at));
  at = varints;
  *at++ = records_tag;
  at = CodedOutputStream::WriteVarint64ToArray(records_bytes, at);
  prefix.append(reinterpret_cast<const char*>(varints), static_cast<size_t>(at - varints));
  assert(prefix.size() - size_before + records_bytes == codec::frame_header_bytes + body_bytes);
  return ok_status();
}

status decode_frame(std::string_view body, wire::Frame& out) {
  out.Clear();
  if (body.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    return {errc::malformed_frame,
            "frame body of " + num(body.size()) + " bytes is too large to parse"};
  bool parsed = false;
  {
    // Protobuf logs some parse failures (a string field that is not UTF-8)
    // to stderr: a peer must not be able to write to our log. The status
    // below reports the failure instead.
    google::protobuf::LogSilencer quiet;
    parsed = out.ParseFromArray(body.data(), static_cast<int>(body.size()));
  }
  if (!parsed) {
    out.Clear();
    return {errc::malformed_frame,
            "frame body of " + num(body.size()) +
                " bytes does not parse as walrus.wire.Frame (corrupt, truncated or a " +
                "string that is not UTF-8; starts " + hex_prefix(body, 8) + ")"};
  }
  if (out.body_case() != body_case::BODY_NOT_SET) return ok_status();
  std::string fields;
  const auto& unknown = out.GetReflection()->GetUnknownFields(out);
  for (int i = 0; i < unknown.field_count() && i < 4; ++i)
    fields += (i == 0 ? "" : ", ") + num(static_cast<uint64_t>(unknown.field(i).number()));
  out.Clear();
  return {errc::unknown_frame, "Frame of " + num(body.size()) +
                                   " bytes sets no body known to protocol version " +
                                   num(protocol_version) +
                                   (fields.empty() ? std::string(" (no fields at all)")
                                                   : " (unknown fields " + fields + ")")};
}

status check_session_frame(const wire::Frame& frame, peer_role sender) {
  const char* who = sender == peer_role::primary ? "the primary" : "a replica";
  switch (frame.body_case()) {
    case body_case::kBatch:
    case body_case::kSnapshotBegin:
    case body_case::kSnapshotChunk:
    case body_case::kSnapshotEnd:
      if (sender == peer_role::primary) return ok_status();
      return violation(std::string(who) + " sent " + frame_name(frame) +
                       ", which only the primary sends");
    case body_case::kAck:
    case body_case::kNack:
      if (sender == peer_role::replica) return ok_status();
      return violation(std::string(who) + " sent " + frame_name(frame) +
                       ", which only a replica sends");
    case body_case::kHeartbeat:
    case body_case::kError: return ok_status();
    case body_case::kHello:
    case body_case::kChallenge:
    case body_case::kAuthResponse:
    case body_case::kWelcome:
      return violation(std::string(who) + " sent " + frame_name(frame) +
                       " after the handshake completed");
    case body_case::BODY_NOT_SET: break;
  }
  return {errc::unknown_frame, std::string(who) + " sent a Frame with no body"};
}

// -- conversions ----------------------------------------------------------------

wire::Batch to_wire(const batch& in) {
  assert(in.first_sequence >= 1 && in.first_sequence <= in.last_sequence);
  auto out = batch_head(in);
  auto& records = *out.mutable_records();
  records.reserve(in.records_bytes());
  for (const auto& piece : in.records) records += piece.bytes;
  return out;
}

wire::Ack to_wire(const ack& in) {
  wire::Ack out;
  out.set_received_sequence(in.received_sequence);
  out.set_durable_sequence(in.durable_sequence);
  out.set_applied_sequence(in.applied_sequence);
  out.set_timestamp_us(in.timestamp_us);
  return out;
}

wire::Nack to_wire(const nack& in) {
  wire::Nack out;
  out.set_from_sequence(in.from_sequence);
  out.set_code(static_cast<uint32_t>(in.code));
  out.set_reason(std::string(utf8_prefix(in.reason, max_error_message_bytes)));
  return out;
}

wire::Heartbeat to_wire(const heartbeat& in) {
  wire::Heartbeat out;
  out.set_timestamp_us(in.timestamp_us);
  out.set_last_sequence(in.last_sequence);
  return out;
}

wire::Error to_wire(const status& error) {
  assert(!error.ok());
  wire::Error out;
  out.set_code(static_cast<uint32_t>(error.code()));
  out.set_message(std::string(utf8_prefix(error.message(), max_error_message_bytes)));
  return out;
}

namespace {

// A received Batch's fields other than its records, as protobuf reads them.
struct batch_fields {
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  uint32_t codec = 0;
  uint32_t uncompressed_size = 0;
  int32_t fragment = 0;
  uint64_t sent_at_us = 0;
};

// from_wire's checks; the batch without its records.
result<batch> checked_batch(const batch_fields& in, const batch_limits& limits) {
  auto first = in.first_sequence;
  auto last = in.last_sequence;
  auto name = batch_name(first, last);
  if (first == 0) return status{errc::malformed_frame, name + ": sequences start at 1"};
  if (last < first)
    return status{errc::malformed_frame, name + ": last_sequence is below first_sequence"};
  auto id = codec::codec_id_from_wire(in.codec);
  if (!id || *id != limits.codec)
    return status{errc::unsupported_codec,
                  name + ": codec " + (id ? std::string(codec::to_string(*id)) : num(in.codec)) +
                      ", but the session negotiated " + codec::to_string(limits.codec)};
  if (in.uncompressed_size > limits.max_uncompressed_bytes)
    return status{errc::size_limit_exceeded,
                  name + ": uncompressed_size " + num(in.uncompressed_size) +
                      " exceeds the limit of " + num(limits.max_uncompressed_bytes) + " bytes"};
  // Every record takes at least its header.
  auto records = last - first + 1;
  if (records > in.uncompressed_size / wal::record_header_bytes)
    return status{errc::malformed_frame, name + ": " + num(records) + " records cannot fit in " +
                                             num(in.uncompressed_size) + " bytes"};
  if (in.fragment < static_cast<int>(fragment::none) ||
      in.fragment > static_cast<int>(fragment::last))
    return status{errc::malformed_frame, name + ": fragment " + std::to_string(in.fragment) +
                                             " is not NONE, FIRST, MIDDLE or LAST"};
  batch out;
  out.first_sequence = first;
  out.last_sequence = last;
  out.codec = static_cast<uint8_t>(*id);
  out.part = static_cast<fragment>(in.fragment);
  out.uncompressed_size = in.uncompressed_size;
  out.sent_at_us = in.sent_at_us;
  return out;
}

// Skips a field of wire type varint, fixed64, length-delimited or fixed32;
// false for groups and anything that does not fit.
bool skip_field(uint32_t wire_type, std::string_view body, size_t& at) {
  uint64_t length = 0;
  switch (wire_type) {
    case 0: return get_varint(body, at, length);
    case 1: length = 8; break;
    case 2:
      if (!get_varint(body, at, length)) return false;
      break;
    case 5: length = 4; break;
    default: return false;
  }
  if (length > body.size() - at) return false;
  at += length;
  return true;
}

}  // namespace

result<batch> from_wire(wire::Batch&& in, const batch_limits& limits) {
  batch_fields fields{in.first_sequence(),
                      in.last_sequence(),
                      static_cast<uint32_t>(in.codec()),
                      in.uncompressed_size(),
                      static_cast<int32_t>(in.fragment()),
                      in.sent_at_us()};
  auto out = checked_batch(fields, limits);
  if (out) out->records = {shared_bytes::adopt(std::move(*in.mutable_records()))};
  return out;
}

result<std::optional<batch>> parse_batch_frame(std::string_view body,
                                               std::shared_ptr<const void> owner,
                                               const batch_limits& limits) {
  // Anything this parser does not take on (a varint above 64 bits among
  // them, which protobuf truncates) is left to protobuf.
  constexpr uint64_t batch_tag = wire::Frame::kBatchFieldNumber << 3 | 2;
  size_t at = 0;
  uint64_t tag = 0;
  uint64_t length = 0;
  if (!get_varint(body, at, tag) || tag != batch_tag || !get_varint(body, at, length) ||
      length != body.size() - at)
    return std::optional<batch>{};  // not a lone Batch: protobuf decides
  batch_fields fields;
  std::string_view records;
  while (at < body.size()) {
    if (!get_varint(body, at, tag) || tag > UINT32_MAX || (tag >> 3) == 0)
      return std::optional<batch>{};
    auto field = static_cast<uint32_t>(tag >> 3);
    auto wire_type = static_cast<uint32_t>(tag & 7);
    bool is_bytes = field == wire::Batch::kRecordsFieldNumber;
    bool is_varint =
        field == wire::Batch::kFirstSequenceFieldNumber ||
        field == wire::Batch::kLastSequenceFieldNumber || field == wire::Batch::kCodecFieldNumber ||
        field == wire::Batch::kUncompressedSizeFieldNumber ||
        field == wire::Batch::kFragmentFieldNumber || field == wire::Batch::kSentAtUsFieldNumber;
    if (!is_bytes && !is_varint) {
      if (!skip_field(wire_type, body, at)) return std::optional<batch>{};
      continue;
    }
    if (wire_type != (is_bytes ? 2u : 0u)) return std::optional<batch>{};
    uint64_t value = 0;
    if (!get_varint(body, at, value)) return std::optional<batch>{};
    switch (field) {
      case wire::Batch::kFirstSequenceFieldNumber: fields.first_sequence = value; break;
      case wire::Batch::kLastSequenceFieldNumber: fields.last_sequence = value; break;
      case wire::Batch::kCodecFieldNumber: fields.codec = static_cast<uint32_t>(value); break;
      case wire::Batch::kUncompressedSizeFieldNumber:
        fields.uncompressed_size = static_cast<uint32_t>(value);
        break;
      case wire::Batch::kFragmentFieldNumber: fields.fragment = static_cast<int32_t>(value); break;
      case wire::Batch::kSentAtUsFieldNumber: fields.sent_at_us = value; break;
      default:  // records: `value` is its length
        if (value > body.size() - at) return std::optional<batch>{};
        records = body.substr(at, static_cast<size_t>(value));
        at += value;
    }
  }
  auto out = checked_batch(fields, limits);
  if (!out) return out.error();
  out->records = {shared_bytes{std::move(owner), records}};
  return std::optional<batch>{std::move(*out)};
}

ack from_wire(const wire::Ack& in) {
  return ack{in.received_sequence(), in.durable_sequence(), in.applied_sequence(),
             in.timestamp_us()};
}

result<nack> from_wire(const wire::Nack& in) {
  if (in.from_sequence() == 0)
    return status{errc::malformed_frame, "Nack from sequence 0: sequences start at 1"};
  if (!is_walrus_code(in.code()))
    return status{errc::malformed_frame,
                  "Nack code " + num(in.code()) + " is not a walrus error code"};
  return nack{in.from_sequence(), static_cast<errc>(in.code()), in.reason()};
}

heartbeat from_wire(const wire::Heartbeat& in) {
  return heartbeat{in.timestamp_us(), in.last_sequence()};
}

status from_wire(const wire::Error& in) {
  if (is_walrus_code(in.code())) return {static_cast<errc>(in.code()), in.message()};
  return violation("peer sent Error with unknown code " + num(in.code()) + ": " +
                   std::string(utf8_prefix(in.message(), max_error_message_bytes)));
}

wire::Frame make_frame(const batch& in) {
  wire::Frame frame;
  *frame.mutable_batch() = to_wire(in);
  return frame;
}

wire::Frame make_frame(const ack& in) {
  wire::Frame frame;
  *frame.mutable_ack() = to_wire(in);
  return frame;
}

wire::Frame make_frame(const nack& in) {
  wire::Frame frame;
  *frame.mutable_nack() = to_wire(in);
  return frame;
}

wire::Frame make_frame(const heartbeat& in) {
  wire::Frame frame;
  *frame.mutable_heartbeat() = to_wire(in);
  return frame;
}

wire::Frame make_error_frame(const status& error) {
  wire::Frame frame;
  *frame.mutable_error() = to_wire(error);
  return frame;
}

// -- acks and nacks -------------------------------------------------------------

ack_validator::ack_validator(uint64_t start_sequence) : sent_(start_sequence - 1) {
  assert(start_sequence >= 1);
}

void ack_validator::note_sent(uint64_t last_sequence) noexcept {
  sent_ = std::max(sent_, last_sequence);
}

status ack_validator::check(const ack& received) {
  auto r = received.received_sequence;
  if (received.durable_sequence > r)
    return violation("Ack durable_sequence " + num(received.durable_sequence) +
                     " exceeds its received_sequence " + num(r));
  if (received.applied_sequence > r)
    return violation("Ack applied_sequence " + num(received.applied_sequence) +
                     " exceeds its received_sequence " + num(r));
  struct level {
    const char* name;
    uint64_t before, now;
  };
  for (auto [name, before, now] :
       {level{"received", last_.received_sequence, r},
        level{"durable", last_.durable_sequence, received.durable_sequence},
        level{"applied", last_.applied_sequence, received.applied_sequence}})
    if (now < before)
      return violation("Ack " + std::string(name) + "_sequence went back from " + num(before) +
                       " to " + num(now));
  if (r > sent_)
    return violation("Ack received_sequence " + num(r) + " is beyond the last sequence sent, " +
                     num(sent_));
  last_ = received;
  return ok_status();
}

status ack_validator::check(const nack& received) const {
  auto from = received.from_sequence;
  if (from <= last_.received_sequence)
    return violation("Nack from sequence " + num(from) + " is at or below the acknowledged " +
                     "received_sequence " + num(last_.received_sequence));
  if (from - 1 > sent_)
    return violation("Nack from sequence " + num(from) + " is beyond the last sequence sent, " +
                     num(sent_) + ", + 1");
  return ok_status();
}

// -- handshake, primary side ------------------------------------------------------

namespace {

status invalid_config(std::string message) {
  return {errc::invalid_argument, std::move(message)};
}

status check_frame_limit(const char* field, uint32_t max_frame_bytes) {
  if (max_frame_bytes >= min_max_frame_bytes) return ok_status();
  return invalid_config(std::string(field) + " " + num(max_frame_bytes) +
                        " is below the minimum of " + num(min_max_frame_bytes) + " bytes");
}

bool heartbeat_in_range(uint32_t interval_ms) noexcept {
  return interval_ms >= min_heartbeat_interval_ms && interval_ms <= max_heartbeat_interval_ms;
}

std::string heartbeat_range() {
  return num(min_heartbeat_interval_ms) + ".." + num(max_heartbeat_interval_ms) + " ms";
}

status check_secret(const std::optional<std::string>& secret) {
  if (secret && secret->empty())
    return invalid_config("an empty secret authenticates nothing: leave it unset or set one");
  return ok_status();
}

status check_codecs(const std::vector<codec::codec_id>& codecs) {
  for (auto id : codecs)
    if (auto known = codec::codec_id_from_wire(static_cast<uint32_t>(id)); !known)
      return invalid_config("codec list: " + known.error().message());
  return ok_status();
}

}  // namespace

status validate(const primary_handshake_config& config) {
  if (config.cluster_id.empty()) return invalid_config("primary: cluster_id is empty");
  if (config.primary_id.empty()) return invalid_config("primary: primary_id is empty");
  if (auto st = check_frame_limit("primary: max_frame_bytes", config.max_frame_bytes); !st.ok())
    return st;
  if (!heartbeat_in_range(config.heartbeat_interval_ms))
    return invalid_config("primary: heartbeat_interval_ms " + num(config.heartbeat_interval_ms) +
                          " is outside " + heartbeat_range());
  if (auto st = check_codecs(config.codec_preference); !st.ok()) return st;
  return check_secret(config.secret);
}

primary_handshake::primary_handshake(primary_handshake_config config) : config_(std::move(config)) {
  assert(validate(config_).ok());
}

status primary_handshake::fail(status error) {
  assert(!error.ok());
  phase_ = phase::failed;
  error_ = std::move(error);
  return error_;
}

// A handshake frame that does not fit the current phase. While a Challenge
// is unanswered, anything but its AuthResponse is a missing proof.
status primary_handshake::not_now(const char* frame) const {
  switch (phase_) {
    case phase::awaiting_hello: return violation(std::string(frame) + " before Hello");
    case phase::awaiting_auth_response:
      return {errc::auth_failed,
              std::string("expected the AuthResponse to the Challenge, got ") + frame};
    case phase::done: return violation(std::string(frame) + " after the handshake completed");
    case phase::failed: break;
  }
  return error_;
}

result<primary_step> primary_handshake::on_frame(const wire::Frame& frame, uint64_t first_retained,
                                                 uint64_t last_durable) {
  if (failed()) return error_;
  switch (frame.body_case()) {
    case body_case::kHello: return on_hello(frame.hello(), first_retained, last_durable);
    case body_case::kAuthResponse:
      return on_auth_response(frame.auth_response(), first_retained, last_durable);
    case body_case::kError: peer_refused_ = true; return fail(from_wire(frame.error()));
    default: return fail(not_now(frame_name(frame)));
  }
}

status primary_handshake::check_hello(const wire::Hello& hello) const {
  if (hello.protocol_version() != protocol_version)
    return {errc::version_mismatch, "protocol version " + num(hello.protocol_version()) +
                                        " is not supported; this primary speaks " +
                                        num(protocol_version)};
  if (hello.cluster_id() != config_.cluster_id)
    return {errc::cluster_mismatch, "replica belongs to cluster " + quoted(hello.cluster_id()) +
                                        "; this primary serves cluster " +
                                        quoted(config_.cluster_id)};
  if (hello.replica_id().empty()) return violation("Hello without a replica_id");
  if (hello.start_sequence() == 0)
    return violation(
        "Hello.start_sequence is 0; sequences start at 1 (an empty replica asks for 1)");
  if (hello.max_frame_bytes() < min_max_frame_bytes)
    return violation("Hello.max_frame_bytes " + num(hello.max_frame_bytes()) +
                     " is below the minimum of " + num(min_max_frame_bytes) + " bytes");
  if (config_.secret && hello.client_nonce().size() != auth::nonce_bytes)
    return {errc::auth_failed, "Hello.client_nonce has " + num(hello.client_nonce().size()) +
                                   " bytes; this primary requires authentication with a " +
                                   num(auth::nonce_bytes) + "-byte nonce"};
  return ok_status();
}

result<primary_step> primary_handshake::on_hello(const wire::Hello& hello, uint64_t first_retained,
                                                 uint64_t last_durable) {
  if (phase_ != phase::awaiting_hello) return fail(not_now("Hello"));
  if (auto st = check_hello(hello); !st.ok()) return fail(std::move(st));
  std::vector<codec::codec_id> supported;  // unknown (newer) codec values are dropped
  for (auto value : hello.codecs())
    if (auto id = codec::codec_id_from_wire(static_cast<uint32_t>(value))) supported.push_back(*id);
  session_.replica_id = hello.replica_id();
  session_.replica_epoch = hello.epoch();
  session_.start_sequence = hello.start_sequence();
  session_.codec = codec::negotiate_codec(config_.codec_preference, supported);
  session_.send_max_frame_bytes = hello.max_frame_bytes();
  session_.receive_max_frame_bytes = config_.max_frame_bytes;
  session_.max_uncompressed_bytes = uncompressed_limit(hello.max_frame_bytes());
  session_.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  client_nonce_ = hello.client_nonce();
  if (!config_.secret) return welcome(first_retained, last_durable);
  auto nonce = auth::make_nonce();
  if (!nonce) return fail(std::move(nonce).error());
  server_nonce_ = std::move(*nonce);
  phase_ = phase::awaiting_auth_response;
  primary_step step;
  step.reply.mutable_challenge()->set_server_nonce(server_nonce_);
  return step;
}

result<primary_step> primary_handshake::on_auth_response(const wire::AuthResponse& response,
                                                         uint64_t first_retained,
                                                         uint64_t last_durable) {
  if (phase_ != phase::awaiting_auth_response) return fail(not_now("AuthResponse"));
  assert(config_.secret && server_nonce_.size() == auth::nonce_bytes);
  if (response.proof().empty())
    return fail({errc::auth_failed,
                 "AuthResponse of replica " + quoted(session_.replica_id) + " carries no proof"});
  auto expected =
      auth::replica_proof(*config_.secret, server_nonce_, client_nonce_, session_.replica_id);
  if (!auth::proof_matches(expected, response.proof()))
    return fail({errc::auth_failed, "AuthResponse proof of replica " + quoted(session_.replica_id) +
                                        " is wrong: the replica does not know the secret"});
  return welcome(first_retained, last_durable);
}

// The start sequence is checked here, with the WAL bounds of this moment and
// only after authentication: an unauthenticated peer learns nothing of the log.
result<primary_step> primary_handshake::welcome(uint64_t first_retained, uint64_t last_durable) {
  assert(first_retained == 0 || first_retained - 1 <= last_durable);
  auto start = session_.start_sequence;
  assert(start >= 1);
  session_.snapshot_follows = start < first_retained && config_.snapshots;
  if (start < first_retained && !config_.snapshots)
    return fail({errc::not_retained, "sequence " + num(start) +
                                         " is no longer retained; first retained is " +
                                         num(first_retained)});
  if (start - 1 > last_durable)
    return fail(violation("replica asks to start at sequence " + num(start) +
                          " but this primary's last sequence is " + num(last_durable) +
                          ": the replica holds entries the primary does not"));
  primary_step step;
  auto& out = *step.reply.mutable_welcome();
  out.set_protocol_version(protocol_version);
  out.set_cluster_id(config_.cluster_id);
  out.set_primary_id(config_.primary_id);
  out.set_epoch(config_.epoch);
  out.set_codec(static_cast<wire::Codec>(session_.codec));
  out.set_max_frame_bytes(config_.max_frame_bytes);
  out.set_start_sequence(start);
  out.set_first_retained(first_retained);
  out.set_last_sequence(last_durable);
  if (config_.secret)
    out.set_proof(auth::primary_proof(*config_.secret, client_nonce_, server_nonce_));
  out.set_heartbeat_interval_ms(config_.heartbeat_interval_ms);
  out.set_snapshot_follows(session_.snapshot_follows);
  phase_ = phase::done;
  step.session = session_;
  return step;
}

// -- handshake, replica side ------------------------------------------------------

status validate(const replica_handshake_config& config) {
  if (config.cluster_id.empty()) return invalid_config("replica: cluster_id is empty");
  if (config.replica_id.empty()) return invalid_config("replica: replica_id is empty");
  if (auto st = check_frame_limit("replica: max_frame_bytes", config.max_frame_bytes); !st.ok())
    return st;
  if (auto st = check_codecs(config.codecs); !st.ok()) return st;
  return check_secret(config.secret);
}

replica_handshake::replica_handshake(replica_handshake_config config) : config_(std::move(config)) {
  assert(validate(config_).ok());
}

status replica_handshake::fail(status error) {
  assert(!error.ok());
  phase_ = phase::failed;
  error_ = std::move(error);
  return error_;
}

status replica_handshake::not_now(const char* frame) const {
  switch (phase_) {
    case phase::idle: return violation(std::string(frame) + " before this replica sent Hello");
    case phase::awaiting_welcome: return violation(std::string(frame) + " before Welcome");
    case phase::done: return violation(std::string(frame) + " after the handshake completed");
    case phase::failed: break;
  }
  return error_;
}

result<wire::Frame> replica_handshake::make_hello(uint64_t start_sequence) {
  if (phase_ != phase::idle)
    return fail({errc::invalid_transition, "make_hello: this handshake already sent its Hello"});
  if (start_sequence == 0)
    return fail({errc::invalid_argument, "make_hello: start_sequence 0; sequences start at 1"});
  auto nonce = auth::make_nonce();
  if (!nonce) return fail(std::move(nonce).error());
  client_nonce_ = std::move(*nonce);
  start_sequence_ = start_sequence;
  phase_ = phase::awaiting_welcome;
  wire::Frame frame;
  auto& hello = *frame.mutable_hello();
  hello.set_protocol_version(config_.announce_version);
  hello.set_cluster_id(config_.cluster_id);
  hello.set_replica_id(config_.replica_id);
  hello.set_epoch(config_.epoch);
  hello.set_start_sequence(start_sequence);
  for (auto id : config_.codecs) hello.add_codecs(static_cast<wire::Codec>(id));
  hello.set_max_frame_bytes(config_.max_frame_bytes);
  hello.set_client_nonce(client_nonce_);
  return frame;
}

result<replica_step> replica_handshake::on_frame(const wire::Frame& frame) {
  if (failed()) return error_;
  replica_step step;
  switch (frame.body_case()) {
    case body_case::kChallenge: {
      auto reply = on_challenge(frame.challenge());
      if (!reply) return std::move(reply).error();
      step.reply = std::move(*reply);
      return step;
    }
    case body_case::kWelcome: {
      auto session = on_welcome(frame.welcome());
      if (!session) return std::move(session).error();
      step.session = std::move(*session);
      return step;
    }
    case body_case::kError: return on_error(frame.error());
    default: return fail(not_now(frame_name(frame)));
  }
}

result<wire::Frame> replica_handshake::on_challenge(const wire::Challenge& challenge) {
  if (phase_ != phase::awaiting_welcome) return fail(not_now("Challenge"));
  if (!server_nonce_.empty()) return fail(violation("a second Challenge"));
  if (!config_.secret)
    return fail(
        {errc::auth_failed, "the primary requires authentication but this replica has no secret"});
  if (challenge.server_nonce().size() != auth::nonce_bytes)
    return fail({errc::auth_failed, "Challenge.server_nonce has " +
                                        num(challenge.server_nonce().size()) + " bytes, expected " +
                                        num(auth::nonce_bytes)});
  server_nonce_ = challenge.server_nonce();
  wire::Frame frame;
  frame.mutable_auth_response()->set_proof(
      auth::replica_proof(*config_.secret, server_nonce_, client_nonce_, config_.replica_id));
  return frame;
}

status replica_handshake::check_welcome_proof(const wire::Welcome& welcome) const {
  if (!config_.secret) return ok_status();  // a proof we cannot check is ignored
  if (server_nonce_.empty())
    return {errc::auth_failed,
            "Welcome without a Challenge, but this replica requires the "
            "primary to authenticate"};
  auto expected = auth::primary_proof(*config_.secret, client_nonce_, server_nonce_);
  if (!auth::proof_matches(expected, welcome.proof()))
    return {errc::auth_failed,
            welcome.proof().empty()
                ? "Welcome carries no proof"
                : "Welcome proof is wrong: the primary does not know the secret"};
  return ok_status();
}

status replica_handshake::check_welcome(const wire::Welcome& welcome) const {
  if (welcome.protocol_version() != protocol_version)
    return {errc::version_mismatch, "primary speaks protocol version " +
                                        num(welcome.protocol_version()) + "; this replica speaks " +
                                        num(protocol_version)};
  if (auto st = check_welcome_proof(welcome); !st.ok()) return st;
  if (welcome.cluster_id() != config_.cluster_id)
    return {errc::cluster_mismatch, "primary serves cluster " + quoted(welcome.cluster_id()) +
                                        "; this replica belongs to cluster " +
                                        quoted(config_.cluster_id)};
  auto wire_codec = static_cast<uint32_t>(welcome.codec());
  auto id = codec::codec_id_from_wire(wire_codec);
  if (!id || (*id != codec::codec_id::none &&
              std::find(config_.codecs.begin(), config_.codecs.end(), *id) == config_.codecs.end()))
    return {errc::unsupported_codec,
            "Welcome selects codec " + (id ? std::string(codec::to_string(*id)) : num(wire_codec)) +
                ", which this replica did not offer"};
  if (welcome.start_sequence() != start_sequence_)
    return violation("Welcome.start_sequence " + num(welcome.start_sequence()) +
                     " differs from the " + num(start_sequence_) + " this replica asked for");
  if ((welcome.first_retained() > start_sequence_ && !welcome.snapshot_follows()) ||
      start_sequence_ - 1 > welcome.last_sequence())
    return violation("Welcome announces the primary's log as " + num(welcome.first_retained()) +
                     ".." + num(welcome.last_sequence()) + ", which cannot serve sequence " +
                     num(start_sequence_));
  if (welcome.max_frame_bytes() < min_max_frame_bytes)
    return violation("Welcome.max_frame_bytes " + num(welcome.max_frame_bytes()) +
                     " is below the minimum of " + num(min_max_frame_bytes) + " bytes");
  if (!heartbeat_in_range(welcome.heartbeat_interval_ms()))
    return violation("Welcome.heartbeat_interval_ms " + num(welcome.heartbeat_interval_ms()) +
                     " is outside " + heartbeat_range());
  return ok_status();
}

result<replica_session> replica_handshake::on_welcome(const wire::Welcome& welcome) {
  if (phase_ != phase::awaiting_welcome) return fail(not_now("Welcome"));
  if (auto st = check_welcome(welcome); !st.ok()) return fail(std::move(st));
  replica_session session;
  session.primary_id = welcome.primary_id();
  session.primary_epoch = welcome.epoch();
  session.codec = static_cast<codec::codec_id>(welcome.codec());
  session.start_sequence = welcome.start_sequence();
  session.first_retained = welcome.first_retained();
  session.last_sequence = welcome.last_sequence();
  session.send_max_frame_bytes = welcome.max_frame_bytes();
  session.receive_max_frame_bytes = config_.max_frame_bytes;
  session.heartbeat_interval_ms = welcome.heartbeat_interval_ms();
  session.snapshot_follows = welcome.snapshot_follows();
  phase_ = phase::done;
  return session;
}

status replica_handshake::on_error(const wire::Error& error) {
  if (failed()) return error_;
  peer_refused_ = true;
  return fail(from_wire(error));
}

}  // namespace walrus::wire_format
