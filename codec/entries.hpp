// The entries blob of docs/protocol.md §4: for each entry, an unsigned LEB128
// length followed by the payload. A blob travels with a commit bitmap (bit i
// set when entry i ends its transaction). The tailer writes blobs, the
// batcher concatenates them, the applier reads them back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/bitmap.hpp"
#include "base/status.hpp"

namespace walrus::codec {

// Appends entries to a blob and its commit bitmap.
class entries_writer {
 public:
  entries_writer(std::string& blob, std::string& commit_flags)
      : blob_(blob), flags_(commit_flags) {}

  // Starts counting at `count` entries already in the blob.
  entries_writer(std::string& blob, std::string& commit_flags, uint64_t count)
      : blob_(blob), flags_(commit_flags), count_(count) {}

  void add(std::string_view payload, bool commit);

  uint64_t count() const noexcept { return count_; }

 private:
  std::string& blob_;
  std::string& flags_;
  uint64_t count_ = 0;
};

// Appends `src` (a blob of `src_count` entries with its bitmap) to `dst`
// (a blob of `dst_count` entries), shifting the bitmap as needed.
void append_entries(std::string& dst, std::string& dst_flags, uint64_t dst_count,
                    std::string_view src, std::string_view src_flags, uint64_t src_count);

inline bool commit_bit(std::string_view flags, uint64_t i) noexcept {
  return test_bit(flags, i);
}

// The encoded size of one entry.
size_t encoded_size(size_t payload_size) noexcept;

struct entry_view {
  std::string_view payload;
  bool commit = false;
};

// Parses a blob that must hold exactly `count` entries; the views point into
// `blob`. Errors are errc::malformed_frame naming the entry and offset.
[[nodiscard]] status parse_entries(std::string_view blob, std::string_view commit_flags,
                                   uint64_t count, std::vector<entry_view>& out);

}  // namespace walrus::codec
