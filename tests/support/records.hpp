// WAL records framed as a primary's log frames them (docs/wal-format.md §1),
// for tests that build what a log holds or what a Batch carries by hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wal/format.hpp"

namespace walrus::testing {

// Records first, first + 1, ... with `payloads`; record i commits when
// commits[i].
inline std::string framed_records(uint64_t first, const std::vector<std::string>& payloads,
                                  const std::vector<bool>& commits) {
  std::string out;
  for (size_t i = 0; i < payloads.size(); ++i) {
    auto at = out.size();
    out.resize(at + wal::encoded_record_bytes(payloads[i].size()));
    wal::encode_record(out.data() + at, first + i,
                       wal::make_flags(wal::record_type::data, commits[i]), payloads[i]);
  }
  return out;
}

// `n` records of `payload_bytes` bytes each ('a', 'b', ...), only the last
// one committing: one transaction.
inline std::string framed_transaction(uint64_t first, uint64_t n, size_t payload_bytes) {
  std::vector<std::string> payloads;
  std::vector<bool> commits;
  for (uint64_t i = 0; i < n; ++i) {
    payloads.emplace_back(payload_bytes, static_cast<char>('a' + i % 26));
    commits.push_back(i + 1 == n);
  }
  return framed_records(first, payloads, commits);
}

}  // namespace walrus::testing
