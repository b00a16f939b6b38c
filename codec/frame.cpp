#include "codec/frame.hpp"

#include <algorithm>
#include <cassert>

namespace walrus::codec {

void write_frame_length(char* header, uint32_t length) noexcept {
  for (size_t i = 0; i < frame_header_bytes; ++i)
    header[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
}

uint32_t read_frame_length(const char* header) noexcept {
  uint32_t length = 0;
  for (size_t i = 0; i < frame_header_bytes; ++i)
    length |= static_cast<uint32_t>(static_cast<unsigned char>(header[i])) << (8 * i);
  return length;
}

namespace {

// A frame length the receiver refuses: zero, or above its limit.
status check_frame_length(uint32_t length, uint32_t max_frame_bytes, uint64_t offset) {
  if (length == 0)
    return {errc::malformed_frame, "zero-length frame at stream offset " + std::to_string(offset) +
                                       ": every frame has a body"};
  if (length > max_frame_bytes)
    return {errc::frame_too_large, "frame of " + std::to_string(length) +
                                       " bytes at stream offset " + std::to_string(offset) +
                                       " exceeds the limit of " + std::to_string(max_frame_bytes) +
                                       " bytes"};
  return ok_status();
}

}  // namespace

// -- frame_encoder ------------------------------------------------------------

frame_encoder::frame_encoder(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {
  assert(max_frame_bytes >= 1);
}

void frame_encoder::set_max_frame_bytes(uint32_t max_frame_bytes) noexcept {
  assert(max_frame_bytes >= 1);
  max_frame_bytes_ = max_frame_bytes;
}

status frame_encoder::check_body_size(size_t body_bytes) const {
  if (body_bytes == 0) return {errc::invalid_argument, "empty frame body: every frame has a body"};
  if (body_bytes > max_frame_bytes_)
    return {errc::frame_too_large, "frame body of " + std::to_string(body_bytes) +
                                       " bytes exceeds the peer's limit of " +
                                       std::to_string(max_frame_bytes_) + " bytes"};
  return ok_status();
}

status frame_encoder::append(std::string_view body, std::string& out) const {
  if (auto st = check_body_size(body.size()); !st.ok()) return st;
  char header[frame_header_bytes];
  write_frame_length(header, static_cast<uint32_t>(body.size()));
  out.reserve(out.size() + frame_header_bytes + body.size());
  out.append(header, frame_header_bytes);
  out.append(body);
  return ok_status();
}

size_t frame_encoder::begin_frame(std::string& out) const {
  auto header_offset = out.size();
  out.append(frame_header_bytes, '\0');
  return header_offset;
}

status frame_encoder::end_frame(std::string& out, size_t header_offset) const {
  assert(header_offset + frame_header_bytes <= out.size());
  auto body_bytes = out.size() - header_offset - frame_header_bytes;
  if (auto st = check_body_size(body_bytes); !st.ok()) {
    out.resize(header_offset);
    return st;
  }
  write_frame_length(out.data() + header_offset, static_cast<uint32_t>(body_bytes));
  return ok_status();
}

// -- frame_decoder ------------------------------------------------------------

frame_decoder::frame_decoder(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {
  assert(max_frame_bytes >= 1);
}

void frame_decoder::set_max_frame_bytes(uint32_t max_frame_bytes) noexcept {
  assert(max_frame_bytes >= 1);
  max_frame_bytes_ = max_frame_bytes;
}

void frame_decoder::feed(const char* data, size_t size) {
  if (failed()) return;
  assert(piece_bytes_ == 0 && "feed() before next() reported need-more");
  assert(data != nullptr || size == 0);
  piece_ = data;
  piece_bytes_ = size;
}

frame_decoder::next_result frame_decoder::next() {
  if (failed()) return error_;
  if (partial_returned_) {
    partial_.clear();  // keeps its capacity for the next split frame
    partial_length_ = 0;
    partial_returned_ = false;
  }
  if (!partial_.empty()) return continue_partial();
  frame_offset_ = consumed_;
  return next_from_piece();
}

// The common case: a frame that lies whole inside the piece, returned in place.
frame_decoder::next_result frame_decoder::next_from_piece() {
  assert(partial_.empty());
  if (piece_bytes_ < frame_header_bytes) {
    stash_piece(piece_bytes_);
    return std::optional<std::string_view>{};
  }
  auto length = read_frame_length(piece_);
  if (auto st = check_length(length); !st.ok()) return fail(std::move(st));
  if (piece_bytes_ - frame_header_bytes < length) {
    partial_length_ = length;
    stash_piece(piece_bytes_);
    return std::optional<std::string_view>{};
  }
  std::string_view body{piece_ + frame_header_bytes, length};
  piece_ += frame_header_bytes + length;
  piece_bytes_ -= frame_header_bytes + length;
  consumed_ += frame_header_bytes + length;
  return std::optional<std::string_view>{body};
}

// A frame split across pieces: complete its header, check it, then its body.
frame_decoder::next_result frame_decoder::continue_partial() {
  if (partial_length_ == 0) {
    stash_piece(std::min(piece_bytes_, frame_header_bytes - partial_.size()));
    if (partial_.size() < frame_header_bytes) return std::optional<std::string_view>{};
    auto length = read_frame_length(partial_.data());
    if (auto st = check_length(length); !st.ok()) return fail(std::move(st));
    partial_length_ = length;
  }
  size_t frame_bytes = frame_header_bytes + partial_length_;
  stash_piece(std::min(piece_bytes_, frame_bytes - partial_.size()));
  if (partial_.size() < frame_bytes) return std::optional<std::string_view>{};
  assert(partial_.size() == frame_bytes);
  partial_returned_ = true;
  return std::optional<std::string_view>{
      std::string_view{partial_.data() + frame_header_bytes, partial_length_}};
}

status frame_decoder::check_length(uint32_t length) const {
  return check_frame_length(length, max_frame_bytes_, frame_offset_);
}

// Moves `bytes` from the front of the piece into the split-frame buffer.
void frame_decoder::stash_piece(size_t bytes) {
  assert(bytes <= piece_bytes_);
  partial_.append(piece_, bytes);
  piece_ += bytes;
  piece_bytes_ -= bytes;
  consumed_ += bytes;
  // The bound: a header, or a header and a body whose length passed
  // check_length (so at most max_frame_bytes when it was read).
  assert(partial_.size() <= frame_header_bytes + size_t{partial_length_});
}

frame_decoder::next_result frame_decoder::fail(status error) {
  assert(!error.ok());
  error_ = std::move(error);
  piece_ = nullptr;
  piece_bytes_ = 0;
  std::string{}.swap(partial_);  // a failed connection keeps no buffer
  partial_length_ = 0;
  return error_;
}

// -- frame_reader -------------------------------------------------------------

frame_reader::frame_reader(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {
  assert(max_frame_bytes >= 1);
}

void frame_reader::set_max_frame_bytes(uint32_t max_frame_bytes) noexcept {
  assert(max_frame_bytes >= 1);
  max_frame_bytes_ = max_frame_bytes;
}

result<bool> frame_reader::on_read(const char* data, size_t size) {
  if (!error_.ok()) return error_;
  assert(size == next_read());
  auto offset = consumed_;
  consumed_ += size;
  if (body_bytes_ != 0) {
    body_bytes_ = 0;
    return true;
  }
  auto length = read_frame_length(data);
  error_ = check_frame_length(length, max_frame_bytes_, offset);
  if (!error_.ok()) return error_;
  body_bytes_ = length;
  return false;
}

status frame_decoder::end_of_stream() const {
  if (failed()) return error_;
  assert(piece_bytes_ == 0 && "end_of_stream() before next() reported need-more");
  if (partial_.empty() || partial_returned_) return ok_status();
  if (partial_length_ == 0)
    return {errc::malformed_frame, "stream ended inside a frame header at stream offset " +
                                       std::to_string(frame_offset_) + ": " +
                                       std::to_string(partial_.size()) + " of " +
                                       std::to_string(frame_header_bytes) + " header bytes"};
  return {errc::malformed_frame, "stream ended inside a frame at stream offset " +
                                     std::to_string(frame_offset_) + ": " +
                                     std::to_string(partial_.size() - frame_header_bytes) + " of " +
                                     std::to_string(partial_length_) + " body bytes"};
}

}  // namespace walrus::codec
