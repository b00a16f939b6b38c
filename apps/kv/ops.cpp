#include "apps/kv/ops.hpp"

#include "base/varint.hpp"

#include <cassert>

namespace walrus::kv {

namespace {

// Protobuf wire types and the tags of kv.proto.
constexpr uint8_t wire_varint = 0;
constexpr uint8_t wire_fixed64 = 1;
constexpr uint8_t wire_length = 2;
constexpr uint8_t wire_fixed32 = 5;
constexpr uint8_t tag_op_set = (1 << 3) | wire_length;
constexpr uint8_t tag_op_del = (2 << 3) | wire_length;
constexpr uint8_t tag_op_flush_all = (3 << 3) | wire_length;
constexpr uint8_t tag_key = (1 << 3) | wire_length;
constexpr uint8_t tag_value = (2 << 3) | wire_length;
constexpr uint8_t tag_expire = (3 << 3) | wire_varint;

// A length-delimited field, omitted when empty (proto3 default value).
size_t bytes_field_size(std::string_view data) noexcept {
  return data.empty() ? 0 : 1 + varint_size(data.size()) + data.size();
}

void put_bytes_field(std::string& out, uint8_t tag, std::string_view data) {
  if (data.empty()) return;
  out.push_back(static_cast<char>(tag));
  put_varint(out, data.size());
  out.append(data.data(), data.size());
}

status malformed(std::string_view what, size_t offset) {
  return status{errc::malformed_frame,
                "kv op at byte " + std::to_string(offset) + ": " + std::string{what}};
}

// A cursor over protobuf fields; `base` is the offset of `data` in the
// whole payload, for error messages.
struct field_reader {
  std::string_view data;
  size_t base = 0;
  size_t pos = 0;

  bool done() const noexcept { return pos == data.size(); }
  size_t offset() const noexcept { return base + pos; }

  bool varint(uint64_t& out) noexcept { return get_varint(data, pos, out); }

  // Reads one field: its number, wire type and (for length-delimited)
  // contents; other wire types are skipped.
  status next(uint32_t& number, uint8_t& type, std::string_view& contents, uint64_t& value) {
    auto at = offset();
    uint64_t tag = 0;
    if (!varint(tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) return malformed("bad tag", at);
    number = static_cast<uint32_t>(tag >> 3);
    type = static_cast<uint8_t>(tag & 7);
    switch (type) {
      case wire_varint:
        if (!varint(value)) return malformed("bad varint", at);
        return status{};
      case wire_fixed64: return skip(8, at);
      case wire_fixed32: return skip(4, at);
      case wire_length: {
        uint64_t length = 0;
        if (!varint(length) || length > data.size() - pos)
          return malformed("length runs past the end", at);
        contents = data.substr(pos, length);
        pos += length;
        return status{};
      }
      default: return malformed("unsupported wire type " + std::to_string(type), at);
    }
  }

  status skip(size_t n, size_t at) {
    if (data.size() - pos < n) return malformed("fixed field runs past the end", at);
    pos += n;
    return status{};
  }
};

// The fields of a Set or Del message.
status decode_body(std::string_view body, size_t base, op& out) {
  field_reader reader{body, base};
  while (!reader.done()) {
    uint32_t number = 0;
    uint8_t type = 0;
    std::string_view contents;
    uint64_t value = 0;
    auto at = reader.offset();
    if (auto st = reader.next(number, type, contents, value); !st.ok()) return st;
    bool is_set = out.kind == op_kind::set;
    bool known_field = number == 1 || (is_set && (number == 2 || number == 3));
    if (!known_field) continue;  // skipped, as protobuf does
    uint8_t expected = number == 3 ? wire_varint : wire_length;
    if (type != expected)
      return malformed("field " + std::to_string(number) + " has the wrong wire type", at);
    if (number == 1) {
      out.key = contents;
    } else if (number == 2) {
      out.value = contents;
    } else {
      if (value > static_cast<uint64_t>(INT64_MAX)) return malformed("expiry out of range", at);
      out.expire_at_ms = static_cast<int64_t>(value);
    }
  }
  return status{};
}

}  // namespace

status decode_op(std::string_view payload, op& out) {
  out = op{};
  bool known = false;
  field_reader reader{payload, 0};
  while (!reader.done()) {
    uint32_t number = 0;
    uint8_t type = 0;
    std::string_view contents;
    uint64_t value = 0;
    auto at = reader.offset();
    if (auto st = reader.next(number, type, contents, value); !st.ok()) return st;
    if (number > 3) continue;  // a field this version does not know
    if (type != wire_length)
      return malformed("op field " + std::to_string(number) + " is not a message", at);
    // A oneof: the last member on the wire wins, as in protobuf.
    out = op{};
    out.kind = static_cast<op_kind>(number);
    known = true;
    if (out.kind == op_kind::flush_all) continue;  // no fields yet
    auto body_at = reader.offset() - contents.size();
    if (auto st = decode_body(contents, body_at, out); !st.ok()) return st;
  }
  if (!known)
    return status{errc::unknown_frame,
                  "kv op of " + std::to_string(payload.size()) + " bytes holds no known operation"};
  return status{};
}

void encode_set(std::string& out, std::string_view key, std::string_view value,
                int64_t expire_at_ms) {
  assert(expire_at_ms >= 0);
  auto expire = static_cast<uint64_t>(expire_at_ms);
  auto body =
      bytes_field_size(key) + bytes_field_size(value) + (expire == 0 ? 0 : 1 + varint_size(expire));
  out.reserve(out.size() + 1 + varint_size(body) + body);
  out.push_back(static_cast<char>(tag_op_set));
  put_varint(out, body);
  put_bytes_field(out, tag_key, key);
  put_bytes_field(out, tag_value, value);
  if (expire != 0) {
    out.push_back(static_cast<char>(tag_expire));
    put_varint(out, expire);
  }
}

void encode_del(std::string& out, std::string_view key) {
  out.push_back(static_cast<char>(tag_op_del));
  put_varint(out, bytes_field_size(key));
  put_bytes_field(out, tag_key, key);
}

void encode_flush_all(std::string& out) {
  out.push_back(static_cast<char>(tag_op_flush_all));
  out.push_back('\0');
}

void op_batch::add_set(std::string_view key, std::string_view value, int64_t expire_at_ms) {
  encode_set(buffer_, key, value, expire_at_ms);
  close_entry();
}

void op_batch::add_del(std::string_view key) {
  encode_del(buffer_, key);
  close_entry();
}

void op_batch::add_flush_all() {
  encode_flush_all(buffer_);
  close_entry();
}

void op_batch::close_entry() {
  assert(ends_.empty() || buffer_.size() > ends_.back());
  ends_.push_back(buffer_.size());
}

std::string_view op_batch::entry(size_t i) const {
  assert(i < ends_.size());
  size_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view{buffer_}.substr(begin, ends_[i] - begin);
}

const std::vector<std::string_view>& op_batch::entries() {
  views_.clear();
  for (size_t i = 0; i < ends_.size(); ++i) views_.push_back(entry(i));
  return views_;
}

void op_batch::to_transaction(uint64_t first_sequence, transaction& tx) const {
  assert(!empty());
  tx.first_sequence = first_sequence;
  tx.entries.clear();
  for (size_t i = 0; i < ends_.size(); ++i) tx.entries.push_back(entry(i));
}

void op_batch::clear() noexcept {
  buffer_.clear();
  ends_.clear();
  views_.clear();
}

}  // namespace walrus::kv
