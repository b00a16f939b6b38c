// The replication protocol's logic, without actors or sockets
// (docs/protocol.md is normative): framing of `walrus::wire::Frame`s,
// conversion between the wire messages and the plain structs of messages/
// with validation of everything a peer sends, the ack/nack rules of a
// connection, and the handshake state machines of both sides.
//
// The TCP brokers sit on top: they move bytes through codec::frame_decoder /
// frame_encoder, hand each decoded Frame to the functions here, send what
// they return and close on any error (sending make_error_frame(error) first
// unless the error came from the peer's own Error frame). Nothing here
// throws, blocks or keeps a reference to its input; no input a peer can send
// makes it crash. This header is the edge where protobuf types live: the
// actors behind the brokers see only batch, ack, nack and heartbeat.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "codec/codec.hpp"
#include "codec/frame.hpp"
#include "messages/types.hpp"
#include "replication.pb.h"

namespace walrus::wire_format {

// 2: a Batch carries WAL records as the primary's log frames them (1 sent
// an entries blob with a separate CRC32C and commit bitmap).
constexpr uint32_t protocol_version = 2;

// docs/protocol.md §1: the frame limit a side may announce.
constexpr uint32_t min_max_frame_bytes = 1024 * 1024;
// §4: a batch never decompresses to more than 4 x the receiver's
// max_frame_bytes, and never to more than this.
constexpr uint32_t max_uncompressed_bytes = 64 * 1024 * 1024;
// §6: heartbeats when idle, and the silence after which a peer is gone.
constexpr uint32_t default_heartbeat_interval_ms = 1000;
constexpr uint32_t min_heartbeat_interval_ms = 10;
constexpr uint32_t max_heartbeat_interval_ms = 60 * 1000;
constexpr uint32_t min_peer_timeout_ms = 1000;
// §2: Error.message is cut to this many bytes (at a UTF-8 boundary) so that
// an Error always fits the 64 KiB handshake frame limit.
constexpr size_t max_error_message_bytes = 1024;

// min(4 x max_frame_bytes, max_uncompressed_bytes): the uncompressed_size a
// replica that announced `max_frame_bytes` accepts, and so the largest batch
// a primary may build for it.
uint32_t uncompressed_limit(uint32_t max_frame_bytes) noexcept;

// max(3 x heartbeat interval, min_peer_timeout_ms).
uint32_t peer_timeout_ms(uint32_t heartbeat_interval_ms) noexcept;

// -- frames -------------------------------------------------------------------

// "Hello", "Batch", ...; "no body" for a Frame without one.
const char* frame_name(const wire::Frame& frame) noexcept;

// Appends `frame` as length + body to `out`, serializing in place (no
// intermediate copy). A Frame with no body is errc::invalid_argument, a body
// above encoder.max_frame_bytes() errc::frame_too_large (checked before
// serializing); `out` is then unchanged.
[[nodiscard]] status encode_frame(const wire::Frame& frame, const codec::frame_encoder& encoder,
                                  std::string& out);

// The Batch frame of `in` (length + Frame{batch}) is the bytes this appends
// to `prefix` (the length, the Batch's other fields, the records' tag and
// length) followed by in.records: a broker writes the records straight
// from where they are, and encode_frame's serialising copy of them is
// saved. The body is a valid Frame whose Batch carries `records` (field 6)
// after its other fields, which a protobuf parser accepts like any field
// order. Errors as encode_frame; `prefix` is then unchanged.
[[nodiscard]] status batch_frame_prefix(const batch& in, const codec::frame_encoder& encoder,
                                        std::string& prefix);

// Parses a frame body (as codec::frame_decoder returns it) into `out`.
// Errors: errc::malformed_frame when it does not parse as a Frame,
// errc::unknown_frame when it parses but sets no body this version knows.
[[nodiscard]] status decode_frame(std::string_view body, wire::Frame& out);

// Which side of a session sends a frame.
enum class peer_role : uint8_t { primary, replica };

// After Welcome (§3): Batch and snapshot frames come only from the primary,
// Ack and Nack only from the replica, Heartbeat and Error from either;
// handshake frames never. Anything else is errc::protocol_violation.
[[nodiscard]] status check_session_frame(const wire::Frame& frame, peer_role sender);

// -- conversions ----------------------------------------------------------------

// Heartbeat (§6) has no actor-side struct elsewhere; this is it.
struct heartbeat {
  uint64_t timestamp_us = 0;
  uint64_t last_sequence = 0;  // primary: newest durable; replica: its durable
};

// What from_wire(Batch) checks against: the session's negotiated codec and
// uncompressed_limit(the receiving replica's max_frame_bytes).
struct batch_limits {
  codec::codec_id codec = codec::codec_id::none;
  uint32_t max_uncompressed_bytes = 0;
};

// Copies the records into the message (tests; the primary's broker uses
// batch_frame_prefix). Precondition (asserted): a well-formed batch.
wire::Batch to_wire(const batch& in);
wire::Ack to_wire(const ack& in);
wire::Nack to_wire(const nack& in);
wire::Heartbeat to_wire(const heartbeat& in);
// Precondition: !error.ok(). The message is cut to max_error_message_bytes.
wire::Error to_wire(const status& error);

// Checks a received Batch (before any decompression; the applier verifies
// size and records in the order of §4, check_batch_records) and takes its
// records over without copying them. Errors, each naming the batch range:
// * errc::malformed_frame: first_sequence 0, last < first, more records
//   than uncompressed_size bytes could hold, a fragment value outside
//   NONE..LAST;
// * errc::unsupported_codec: an unknown codec id or not the session's codec;
// * errc::size_limit_exceeded: uncompressed_size above limits.
[[nodiscard]] result<batch> from_wire(wire::Batch&& in, const batch_limits& limits);
// The Batch of a frame body that holds a Batch and nothing else (what a
// primary of this version sends), parsed in place: its records are a view
// into `body`, which `owner` keeps alive, instead of a copy. The checks and
// errors are from_wire's. An empty optional for any other body, or one
// this parser does not take on (a Frame with more than its Batch, a group,
// a varint that does not end): decode_frame then parses it as protobuf
// does, and the two agree on every body both take (frame_fuzz checks).
[[nodiscard]] result<std::optional<batch>> parse_batch_frame(std::string_view body,
                                                             std::shared_ptr<const void> owner,
                                                             const batch_limits& limits);

// Values only; whether an ack is acceptable is ack_validator's question.
ack from_wire(const wire::Ack& in);
// errc::malformed_frame for from_sequence 0 or a code that is not a walrus
// error code.
[[nodiscard]] result<nack> from_wire(const wire::Nack& in);
heartbeat from_wire(const wire::Heartbeat& in);
// The peer's refusal as a status: its code and message. A code 0 or one
// this version does not know becomes errc::protocol_violation naming it.
// Never ok.
[[nodiscard]] status from_wire(const wire::Error& in);

// One-body Frames, ready for encode_frame.
wire::Frame make_frame(const batch& in);
wire::Frame make_frame(const ack& in);
wire::Frame make_frame(const nack& in);
wire::Frame make_frame(const heartbeat& in);
wire::Frame make_error_frame(const status& error);

// -- acks and nacks -------------------------------------------------------------

// The primary's view of one connection's acks and nacks (§5): the three
// sequences never decrease, durable and applied never exceed received, and
// nothing is acknowledged beyond what was sent. Violations are
// errc::protocol_violation and leave the remembered state unchanged.
class ack_validator {
 public:
  // `start_sequence`: Welcome.start_sequence. The replica already holds
  // everything below it, so acks up to start_sequence - 1 need no batch.
  explicit ack_validator(uint64_t start_sequence);

  // The primary sent entries up to `last_sequence` (a batch, or a snapshot
  // at its snapshot_sequence). Never lowers the mark (resends after a nack).
  void note_sent(uint64_t last_sequence) noexcept;

  [[nodiscard]] status check(const ack& received);
  // from_sequence within last received + 1 .. last sent + 1.
  [[nodiscard]] status check(const nack& received) const;

  const ack& last_ack() const noexcept { return last_; }
  uint64_t sent_sequence() const noexcept { return sent_; }

 private:
  ack last_;
  uint64_t sent_;
};

// -- handshake, primary side ------------------------------------------------------

struct primary_handshake_config {
  std::string cluster_id;
  std::string primary_id;
  uint64_t epoch = 0;
  // Codecs in the primary's order of preference; none is always possible.
  std::vector<codec::codec_id> codec_preference{codec::codec_id::none};
  uint32_t max_frame_bytes = codec::default_max_frame_bytes;  // the primary accepts
  std::optional<std::string> secret;                          // set: replicas must prove it
  uint32_t heartbeat_interval_ms = default_heartbeat_interval_ms;
  // A snapshot source exists: a replica whose start is no longer retained
  // gets Welcome{snapshot_follows} instead of Error{not_retained}.
  bool snapshots = false;
};

// errc::invalid_argument naming the field: an empty cluster_id or
// primary_id, max_frame_bytes below min_max_frame_bytes, an empty secret, a
// heartbeat interval outside min..max_heartbeat_interval_ms.
[[nodiscard]] status validate(const primary_handshake_config& config);

// What the primary's broker needs to run an accepted session.
struct primary_session {
  std::string replica_id;
  uint64_t replica_epoch = 0;   // Hello.epoch: the highest epoch the replica saw
  uint64_t start_sequence = 0;  // the first batch starts here
  codec::codec_id codec = codec::codec_id::none;
  uint32_t send_max_frame_bytes = 0;     // Hello.max_frame_bytes: the encoder's limit
  uint32_t receive_max_frame_bytes = 0;  // ours: the decoder's limit from now on
  uint32_t max_uncompressed_bytes = 0;   // largest batch (uncompressed) for this replica
  uint32_t heartbeat_interval_ms = 0;
  bool snapshot_follows = false;  // Welcome said so: send a snapshot before any batch
};

// What to do after a handshake frame: send `reply`; when `session` is set
// the reply is the Welcome and streaming starts, else it is the Challenge.
struct primary_step {
  wire::Frame reply;
  std::optional<primary_session> session;
};

// The primary's half of §3 for one connection. Feed it every frame that
// arrives before the session starts. An error result means: send
// make_error_frame(error) (unless peer_refused()) and close. Errors:
// version_mismatch, cluster_mismatch, auth_failed, not_retained (the start
// sequence was dropped by retention: a broker with a snapshot source may
// start a snapshot transfer instead), protocol_violation, io_error (no
// nonce). Once failed or done, every call fails.
class primary_handshake {
 public:
  // Precondition: validate(config) is ok.
  explicit primary_handshake(primary_handshake_config config);

  // The primary's WAL bounds are read at each call: the start sequence is
  // checked (and Welcome filled) with those current when Welcome is built.
  // Precondition: first_retained <= last_durable + 1.
  [[nodiscard]] result<primary_step> on_frame(const wire::Frame& frame, uint64_t first_retained,
                                              uint64_t last_durable);
  [[nodiscard]] result<primary_step> on_hello(const wire::Hello& hello, uint64_t first_retained,
                                              uint64_t last_durable);
  [[nodiscard]] result<primary_step> on_auth_response(const wire::AuthResponse& response,
                                                      uint64_t first_retained,
                                                      uint64_t last_durable);

  bool done() const noexcept { return phase_ == phase::done; }
  bool failed() const noexcept { return phase_ == phase::failed; }
  // The failure was the replica's own Error frame: do not answer it.
  bool peer_refused() const noexcept { return peer_refused_; }

 private:
  enum class phase : uint8_t { awaiting_hello, awaiting_auth_response, done, failed };

  status check_hello(const wire::Hello& hello) const;
  result<primary_step> welcome(uint64_t first_retained, uint64_t last_durable);
  status fail(status error);
  status not_now(const char* frame) const;

  primary_handshake_config config_;
  phase phase_ = phase::awaiting_hello;
  primary_session session_;  // filled from Hello
  std::string client_nonce_;
  std::string server_nonce_;
  status error_;
  bool peer_refused_ = false;
};

// -- handshake, replica side ------------------------------------------------------

struct replica_handshake_config {
  std::string cluster_id;
  std::string replica_id;
  uint64_t epoch = 0;  // highest primary epoch seen
  // Codecs the replica decodes, in its order of preference (none is implied).
  std::vector<codec::codec_id> codecs{codec::codec_id::none};
  uint32_t max_frame_bytes = codec::default_max_frame_bytes;  // the replica accepts
  std::optional<std::string> secret;                          // set: the primary must prove it too
  // The version Hello announces: protocol_version, except in tests of a
  // replica speaking another one.
  uint32_t announce_version = protocol_version;
};

// errc::invalid_argument naming the field: an empty cluster_id or
// replica_id, max_frame_bytes below min_max_frame_bytes, an empty secret.
[[nodiscard]] status validate(const replica_handshake_config& config);

// What the replica's broker needs to run an accepted session.
struct replica_session {
  std::string primary_id;
  uint64_t primary_epoch = 0;
  codec::codec_id codec = codec::codec_id::none;
  uint64_t start_sequence = 0;  // the first batch starts here
  uint64_t first_retained = 0;  // the primary's WAL at Welcome time
  uint64_t last_sequence = 0;
  uint32_t send_max_frame_bytes = 0;     // Welcome.max_frame_bytes: the encoder's limit
  uint32_t receive_max_frame_bytes = 0;  // ours: the decoder's limit from now on
  uint32_t heartbeat_interval_ms = 0;
  bool snapshot_follows = false;  // a snapshot comes before the first batch

  // What from_wire(Batch) checks for this session.
  batch_limits limits() const noexcept {
    return {codec, uncompressed_limit(receive_max_frame_bytes)};
  }
};

// What to do after a handshake frame: send `reply` (an AuthResponse) if
// set; when `session` is set the Welcome was accepted and streaming starts.
struct replica_step {
  std::optional<wire::Frame> reply;
  std::optional<replica_session> session;
};

// The replica's half of §3 for one connection: make_hello, then feed it
// every frame that arrives before the session starts. An error result
// means: send make_error_frame(error) (unless peer_refused()) and close.
// Once failed or done, every call fails.
class replica_handshake {
 public:
  // Precondition: validate(config) is ok.
  explicit replica_handshake(replica_handshake_config config);

  // The first frame: Hello asking for `start_sequence` (durable + 1, >= 1),
  // with a fresh client nonce. errc::io_error when no nonce can be made,
  // errc::invalid_transition when called twice.
  [[nodiscard]] result<wire::Frame> make_hello(uint64_t start_sequence);

  [[nodiscard]] result<replica_step> on_frame(const wire::Frame& frame);
  // The AuthResponse frame to send.
  [[nodiscard]] result<wire::Frame> on_challenge(const wire::Challenge& challenge);
  [[nodiscard]] result<replica_session> on_welcome(const wire::Welcome& welcome);
  // The primary refused: its code and message (see from_wire(Error)).
  [[nodiscard]] status on_error(const wire::Error& error);

  bool done() const noexcept { return phase_ == phase::done; }
  bool failed() const noexcept { return phase_ == phase::failed; }
  bool peer_refused() const noexcept { return peer_refused_; }

 private:
  enum class phase : uint8_t { idle, awaiting_welcome, done, failed };

  status check_welcome(const wire::Welcome& welcome) const;
  status check_welcome_proof(const wire::Welcome& welcome) const;
  status fail(status error);
  status not_now(const char* frame) const;

  replica_handshake_config config_;
  phase phase_ = phase::idle;
  uint64_t start_sequence_ = 0;
  std::string client_nonce_;
  std::string server_nonce_;  // set once a Challenge was answered
  status error_;
  bool peer_refused_ = false;
};

}  // namespace walrus::wire_format
