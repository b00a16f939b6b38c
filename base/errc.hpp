// The walrus error codes. One enum serves every layer: wal/ and codec/ return
// it inside a `status`, and messages/ registers it as a CAF error category so
// the same codes cross actor boundaries as `caf::error`.
#pragma once

#include <cstdint>

namespace walrus {

// Values are part of the wire protocol (Error.code) and of CAF error
// messages: append new codes at the end, never renumber.
enum class errc : uint8_t {
  none = 0,
  // Storage.
  io_error = 1,          // a system call failed (the message names call and path)
  disk_full = 2,         // ENOSPC or EDQUOT while writing
  corruption = 3,        // checksum or structure damage before the tail of a log
  not_retained = 4,      // a sequence number was already dropped by retention
  invalid_argument = 5,  // a caller passed a value outside the contract
  closed = 6,            // the object was closed or failed earlier
  // Encoding and the wire.
  malformed_frame = 10,       // bytes that do not parse as the stated format
  frame_too_large = 11,       // a frame above the negotiated maximum
  unknown_frame = 12,         // a frame body this version does not know
  checksum_mismatch = 13,     // CRC32C of a batch or record does not match
  decompression_failed = 14,  // a codec rejected its input
  size_limit_exceeded = 15,   // output would exceed the stated limit (bomb)
  unsupported_codec = 16,     // no common codec, or an unknown codec id
  // Handshake and session.
  version_mismatch = 20,    // protocol versions differ
  cluster_mismatch = 21,    // cluster ids differ
  auth_failed = 22,         // the shared-secret proof was wrong or missing
  protocol_violation = 23,  // a valid frame at the wrong time or from the wrong side
  // Replication.
  sequence_gap = 30,  // a batch starts after the expected sequence
  replica_lost = 31,  // a replica fell behind a retention cap
  peer_timeout = 32,  // a peer was silent longer than peer_timeout
  timeout = 33,       // a wait or request did not complete in time
  // Supervision and lifecycle.
  restart_intensity_exceeded = 40,  // a supervisor gave up and escalates
  invalid_transition = 41,          // a state machine was asked for a forbidden move
  stopped = 42,                     // a component was asked to stop
  component_failed = 43,            // a child failed for a reason carried alongside
};

// A short stable name: "corruption", "disk_full", ...
const char* to_string(errc code) noexcept;

}  // namespace walrus
