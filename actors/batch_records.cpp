#include "actors/batch_records.hpp"

#include <string>

namespace walrus {

status check_batch_records(const batch& b, const std::vector<std::string_view>& plain,
                           std::vector<wal::record_view>& out) {
  out.clear();
  auto name = "batch " + std::to_string(b.first_sequence) + ".." + std::to_string(b.last_sequence);
  auto count = b.last_sequence - b.first_sequence + 1;
  for (auto piece : plain) {
    for (size_t at = 0; at < piece.size();) {
      auto sequence = b.first_sequence + out.size();
      auto where = [&] { return name + ": record " + std::to_string(sequence) + ": "; };
      if (out.size() == count)
        return status{errc::malformed_frame, name + ": bytes after its last record"};
      wal::record_view record;
      size_t bytes = 0;
      switch (wal::decode_record(piece.data() + at, piece.size() - at, record, bytes)) {
        case wal::decode_outcome::ok: break;
        case wal::decode_outcome::bad_checksum:
          return status{errc::checksum_mismatch, where() + "crc32c differs"};
        case wal::decode_outcome::incomplete:
          return status{errc::malformed_frame, where() + "cut short"};
        case wal::decode_outcome::bad_length:
          return status{errc::malformed_frame, where() + "length above the maximum"};
        case wal::decode_outcome::bad_type:
          return status{errc::malformed_frame, where() + "invalid record type"};
      }
      if (record.sequence != sequence)
        return status{errc::malformed_frame,
                      where() + "carries sequence " + std::to_string(record.sequence)};
      if (record.type() != static_cast<uint8_t>(wal::record_type::data))
        return status{errc::malformed_frame,
                      where() + "type " + std::to_string(record.type()) + " is not data"};
      bool last = out.size() + 1 == count;
      bool may_commit = b.part == fragment::none || (b.part == fragment::last && last);
      bool must_commit = last && (b.part == fragment::none || b.part == fragment::last);
      if (record.commit() ? !may_commit : must_commit)
        return status{errc::malformed_frame,
                      where() + "commit flag contradicts the batch's fragment mark"};
      out.push_back(record);
      at += bytes;
    }
  }
  if (out.size() != count)
    return status{errc::malformed_frame, name + ": holds " + std::to_string(out.size()) +
                                             " records, expected " + std::to_string(count)};
  return status{};
}

}  // namespace walrus
