// The replicated operations of walrus-kv (proto/kv.proto, docs/kv.md): one
// Op per WAL entry, one write command per WAL transaction. This is a
// hand-written, allocation-free codec of exactly the protobuf encoding of
// walrus.kv.Op (tests check it against protoc's code both ways): decoding
// gives views into the payload, encoding appends to a reusable buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/state_machine.hpp"
#include "base/status.hpp"

namespace walrus::kv {

enum class op_kind : uint8_t { set = 1, del = 2, flush_all = 3 };

// A decoded op; key and value view the payload it came from.
struct op {
  op_kind kind = op_kind::flush_all;
  std::string_view key;
  std::string_view value;
  int64_t expire_at_ms = 0;  // Set only; 0 = no expiry
};

// Decodes one WAL entry. Unknown fields inside Set/Del are skipped (protobuf
// rules); an Op of no known kind is errc::unknown_frame, damaged bytes are
// errc::malformed_frame; messages name the byte offset.
[[nodiscard]] status decode_op(std::string_view payload, op& out);

// Appends the protobuf encoding of one op to `out` (what protoc's
// SerializeToString produces for the same message).
void encode_set(std::string& out, std::string_view key, std::string_view value,
                int64_t expire_at_ms);
void encode_del(std::string& out, std::string_view key);
void encode_flush_all(std::string& out);

// The ops of one transaction, encoded back to back in one buffer: what a
// write command produces on the primary. Reuse one batch per writer (clear()
// keeps the capacity) so the SET path does not allocate.
class op_batch {
 public:
  void add_set(std::string_view key, std::string_view value, int64_t expire_at_ms);
  void add_del(std::string_view key);
  void add_flush_all();

  bool empty() const noexcept { return ends_.empty(); }
  size_t size() const noexcept { return ends_.size(); }
  size_t bytes() const noexcept { return buffer_.size(); }
  std::string_view entry(size_t i) const;

  // Views of every entry, for wal::log::append and for apply(); valid until
  // the batch changes.
  const std::vector<std::string_view>& entries();
  // Fills `tx` (reusing its capacity) with this batch as the transaction
  // that starts at `first_sequence`; the views are valid until the batch
  // changes.
  void to_transaction(uint64_t first_sequence, transaction& tx) const;

  void clear() noexcept;

 private:
  void close_entry();

  std::string buffer_;
  std::vector<size_t> ends_;  // end offset of each entry in buffer_
  std::vector<std::string_view> views_;
};

}  // namespace walrus::kv
