// What a replica checks of a batch's records once they are decompressed
// (docs/protocol.md §4), before anything of them is stored or applied:
// whole WAL records (docs/wal-format.md §1) back to back, each with a good
// CRC32C, of type data, with the sequences first_sequence..last_sequence in
// order, and commit flags as the batch's fragment mark says (FIRST and
// MIDDLE: none; LAST: only its last record; NONE: its last record, and any
// before it).
#pragma once

#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "messages/types.hpp"
#include "wal/format.hpp"

namespace walrus {

// `plain` are the records of `b`, in pieces that each end at a record
// boundary. Fills `out` with views into them. Errors name the batch and
// the record: errc::checksum_mismatch for a CRC that differs,
// errc::malformed_frame for anything else.
[[nodiscard]] status check_batch_records(const batch& b, const std::vector<std::string_view>& plain,
                                         std::vector<wal::record_view>& out);

}  // namespace walrus
