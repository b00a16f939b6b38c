// Wire framing (docs/protocol.md §1, docs/codec.md): a TCP connection is a
// sequence of frames
//
//   frame  := length body
//   length := u32, little endian: bytes in body, 1 .. max_frame_bytes
//   body   := opaque bytes (a serialized walrus.wire.Frame; codec/ does not
//             depend on protobuf)
//
// A zero length is malformed: every Frame has a body. `max_frame_bytes`
// bounds the body (the length value), not the 4-byte header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace walrus::codec {

constexpr size_t frame_header_bytes = 4;
// The limit before the handshake completes, and the default announced
// after it (docs/protocol.md §1).
constexpr uint32_t handshake_max_frame_bytes = 64 * 1024;
constexpr uint32_t default_max_frame_bytes = 16 * 1024 * 1024;

// Little-endian u32 at `header` (frame_header_bytes bytes).
void write_frame_length(char* header, uint32_t length) noexcept;
uint32_t read_frame_length(const char* header) noexcept;

// Appends frames to an output buffer, refusing bodies the peer would refuse.
class frame_encoder {
 public:
  // `max_frame_bytes`: the largest body the peer accepts (>= 1).
  explicit frame_encoder(uint32_t max_frame_bytes);

  uint32_t max_frame_bytes() const noexcept { return max_frame_bytes_; }
  void set_max_frame_bytes(uint32_t max_frame_bytes) noexcept;

  // Appends header + body to `out`. An empty body is errc::invalid_argument,
  // one above the limit errc::frame_too_large; `out` is then unchanged.
  [[nodiscard]] status append(std::string_view body, std::string& out) const;

  // Zero-copy framing: begin_frame appends a placeholder header and returns
  // its offset; the caller appends the body to `out` (for example with
  // protobuf's AppendToString); end_frame patches the length. On error (as
  // for append) end_frame truncates `out` back to the offset.
  [[nodiscard]] size_t begin_frame(std::string& out) const;
  [[nodiscard]] status end_frame(std::string& out, size_t header_offset) const;

 private:
  status check_body_size(size_t body_bytes) const;

  uint32_t max_frame_bytes_;
};

// Splits a byte stream that arrives in arbitrary pieces into frame bodies.
//
// Usage, per piece received: feed(data, size), then call next() until it
// returns an error or "need more" (an empty optional). Frames that lie whole
// inside a piece are returned as views into it without copying; only a frame
// split across pieces is copied into the decoder's own buffer, which
// therefore never holds more than frame_header_bytes + max_frame_bytes.
//
// Errors (sticky: once failed, next() and end_of_stream() repeat the error):
// * errc::frame_too_large: a length above max_frame_bytes, reported as soon
//   as its 4 header bytes have arrived, before any body byte is buffered;
// * errc::malformed_frame: a zero length; at end_of_stream(), a partial frame.
// Not thread-safe.
class frame_decoder {
 public:
  // A frame body, or std::nullopt when more bytes are needed.
  using next_result = result<std::optional<std::string_view>>;

  // `max_frame_bytes`: the largest body accepted (>= 1).
  explicit frame_decoder(uint32_t max_frame_bytes);

  uint32_t max_frame_bytes() const noexcept { return max_frame_bytes_; }
  // Applies to frames whose header has not yet been read (e.g. after the
  // handshake raises the limit from handshake_max_frame_bytes).
  void set_max_frame_bytes(uint32_t max_frame_bytes) noexcept;

  // Hands the decoder the next piece of the stream. Precondition: next() has
  // reported need-more or an error since the previous feed. The bytes must
  // stay valid and unchanged until then. Ignored once failed.
  void feed(const char* data, size_t size);

  // The next complete frame body. The view is valid until the next call to
  // next() or feed(), and only while the fed bytes stay valid.
  [[nodiscard]] next_result next();

  // At connection close: ok when the stream ended between frames; a partial
  // frame is errc::malformed_frame naming how much of it arrived.
  // Precondition: as for feed().
  [[nodiscard]] status end_of_stream() const;

  bool failed() const noexcept { return !error_.ok(); }
  // Bytes of a split frame held in the decoder's own buffer.
  size_t buffered_bytes() const noexcept { return partial_.size(); }
  // Bytes of the stream consumed so far (the offset that errors name).
  uint64_t stream_offset() const noexcept { return consumed_; }

 private:
  next_result next_from_piece();
  next_result continue_partial();
  status check_length(uint32_t length) const;
  void stash_piece(size_t bytes);
  next_result fail(status error);

  uint32_t max_frame_bytes_;
  // The piece fed last, not yet consumed.
  const char* piece_ = nullptr;
  size_t piece_bytes_ = 0;
  // Header and body prefix of a frame split across pieces; at most
  // frame_header_bytes + max_frame_bytes. `partial_length_` is its length
  // once the header is complete and checked, 0 before.
  std::string partial_;
  uint32_t partial_length_ = 0;
  bool partial_returned_ = false;  // partial_ is the frame next() returned last
  uint64_t consumed_ = 0;
  uint64_t frame_offset_ = 0;  // stream offset of the current frame's header
  status error_;
};

// Splits a byte stream into frames when the caller reads exactly the bytes
// asked for (a CAF broker's receive_policy::exactly): the 4 header bytes,
// then the body, which then arrives whole, in one buffer, never copied by
// the reader. The limits and errors are frame_decoder's.
//
//   reader.next_read()          -> read exactly that many bytes, then
//   reader.on_read(data, size)  -> error, no body yet (the header), or the body
//
// Not thread-safe.
class frame_reader {
 public:
  explicit frame_reader(uint32_t max_frame_bytes);

  uint32_t max_frame_bytes() const noexcept { return max_frame_bytes_; }
  // Applies from the next header on.
  void set_max_frame_bytes(uint32_t max_frame_bytes) noexcept;

  // The size of the next read: frame_header_bytes, or the body's length.
  size_t next_read() const noexcept { return body_bytes_ == 0 ? frame_header_bytes : body_bytes_; }

  // The read next_read() asked for (`size` must equal it): true when
  // `data` is a whole frame body, false after a header. Errors, sticky:
  // errc::frame_too_large, errc::malformed_frame (a zero length).
  [[nodiscard]] result<bool> on_read(const char* data, size_t size);

  // A frame has begun and not ended: its header or part of its body is in.
  bool inside_frame() const noexcept { return body_bytes_ != 0; }
  uint64_t stream_offset() const noexcept { return consumed_; }

 private:
  uint32_t max_frame_bytes_;
  uint32_t body_bytes_ = 0;  // of the frame whose header was read; 0 before
  uint64_t consumed_ = 0;
  status error_;
};

}  // namespace walrus::codec
