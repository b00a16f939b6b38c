// Fuzz target for WAL recovery (wal/recovery.hpp, docs/wal-format.md §5):
// arbitrary bytes as one or two segment files in a memory_file_system, opened
// in strict and in skip mode, read through a cursor, appended to, reopened.
//
// Input: [0] options  [1..2] where the second file starts (u16)  then the
// bytes of the segment files. options bit 0: two files; bit 1: scan only the
// last segment on open (verify_all_segments = false); bit 2: sync policy
// `always` (else `none`), and then a simulated power loss before the reopen;
// bits 4-5: the cursor's chunk; bits 6-7: records per cursor read. Each file
// is named after the first sequence its header states (bytes 8..15), so a
// mutated header and its file name stay consistent; a file too short for
// that, or stating 0, is named 1 (the second file: 2).
//
// Properties, besides "no crash, no hang":
// * every error is a walrus status: corruption or version_mismatch on open,
//   corruption or not_retained from a cursor;
// * skip mode opens whatever the files hold (it runs when strict mode refuses);
// * an opened log is contiguous: a cursor from its first sequence returns
//   increasing sequences up to its last; with every segment verified on open
//   it reads to the end without an error;
// * one more record appends at last + 1; a strict reopen (after a power loss
//   under `always`) keeps everything, the new record included.
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_support.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

namespace {

using namespace walrus;
using walrus::fuzz::byte_reader;
using walrus::fuzz::check_error;

constexpr const char* dir = "/wal";
constexpr size_t chunk_choices[] = {4096, 4096 + 17, 8192, size_t{1} << 20};
constexpr size_t read_choices[] = {1, 3, 64, 1024};
constexpr std::string_view appended_payload = "appended by the fuzzer";

struct fuzz_options {
  bool two_files = false;
  bool verify_all = true;
  bool sync_always = false;
  size_t chunk_bytes = 4096;
  size_t records_per_read = 1;
};

// The file name a segment's own header asks for, or `fallback`.
std::string name_for(std::string_view bytes, uint64_t fallback) {
  uint64_t first = 0;
  if (bytes.size() >= wal::segment_header_bytes) first = wal::get_le<uint64_t>(bytes.data() + 8);
  return wal::segment_file_name(first != 0 ? first : fallback);
}

void write_file(wal::memory_file_system& fs, const std::string& name, std::string_view bytes) {
  auto file = fs.open(wal::join_path(dir, name), wal::open_mode::create_new);
  WALRUS_FUZZ_CHECK(file.ok());
  WALRUS_FUZZ_CHECK((*file)->append(bytes.data(), bytes.size()).ok());
  WALRUS_FUZZ_CHECK((*file)->sync().ok());
}

wal::options log_options(wal::memory_file_system& fs, const fuzz_options& o,
                         wal::recovery_mode mode) {
  wal::options opts;
  opts.dir = dir;
  opts.fs = &fs;
  opts.sync = o.sync_always ? wal::sync_policy::always() : wal::sync_policy::none();
  opts.segment_bytes = 4096;  // the minimum: the append may roll
  opts.recovery = mode;
  opts.verify_all_segments = o.verify_all;
  opts.cursor_chunk_bytes = o.chunk_bytes;
  return opts;
}

// Reads from the first retained sequence to the end; returns the number of
// records read.
uint64_t read_all(const wal::log& log, const fuzz_options& o) {
  auto first = log.first_sequence(), last = log.last_sequence();
  auto cursor = log.read_from(first);
  WALRUS_FUZZ_CHECK(cursor.ok());
  std::vector<wal::record_view> batch;
  uint64_t previous = first - 1, records = 0;
  for (;;) {
    auto st = cursor->read(batch, o.records_per_read);
    if (!st.ok()) {
      // Only segments open did not scan can hold damage.
      WALRUS_FUZZ_CHECK(!o.verify_all);
      check_error(st, {errc::corruption, errc::not_retained});
      return records;
    }
    if (batch.empty()) break;
    WALRUS_FUZZ_CHECK(batch.size() <= o.records_per_read);
    for (auto& r : batch) {
      WALRUS_FUZZ_CHECK(r.sequence > previous && r.sequence <= last);
      WALRUS_FUZZ_CHECK(r.payload.size() <= wal::max_payload_bytes);
      previous = r.sequence;
      ++records;
    }
  }
  WALRUS_FUZZ_CHECK(cursor->next_sequence() == last + 1);
  return records;
}

// The record at `sequence` holds `payload`.
void check_record(const wal::log& log, uint64_t sequence, std::string_view payload) {
  auto cursor = log.read_from(sequence);
  WALRUS_FUZZ_CHECK(cursor.ok());
  wal::record_view record;
  auto got = cursor->next(record);
  WALRUS_FUZZ_CHECK(got.ok() && *got);
  WALRUS_FUZZ_CHECK(record.sequence == sequence && record.payload == payload && record.commit());
}

// Returns whether the log opened.
bool open_append_reopen(std::string_view first_file, std::string_view second_file,
                        const fuzz_options& o, wal::recovery_mode mode) {
  wal::memory_file_system fs{1};
  WALRUS_FUZZ_CHECK(fs.create_directories(dir).ok());
  auto first_name = name_for(first_file, 1);
  write_file(fs, first_name, first_file);
  if (o.two_files) {
    auto second_name = name_for(second_file, 2);
    if (second_name != first_name) write_file(fs, second_name, second_file);
  }
  WALRUS_FUZZ_CHECK(fs.sync_dir(dir).ok());

  auto opened = wal::log::open(log_options(fs, o, mode));
  if (!opened) {
    WALRUS_FUZZ_CHECK(mode == wal::recovery_mode::strict);
    check_error(opened.error(), {errc::corruption, errc::version_mismatch});
    return false;
  }
  auto& log = **opened;
  const auto& report = log.recovery();
  auto first = log.first_sequence(), last = log.last_sequence();
  WALRUS_FUZZ_CHECK(first >= 1 && first - 1 <= last);
  WALRUS_FUZZ_CHECK(log.durable_sequence() == last);
  WALRUS_FUZZ_CHECK(report.first_sequence == first && report.last_sequence == last);
  WALRUS_FUZZ_CHECK(mode == wal::recovery_mode::skip_damaged_segments || !report.lost_data());
  auto records = read_all(log, o);
  WALRUS_FUZZ_CHECK(records <= last - first + 1);

  auto appended = log.append(appended_payload);
  if (!appended) {
    check_error(appended.error());
    std::fprintf(stderr, "append after open failed: %s\n", appended.error().to_string().c_str());
    WALRUS_FUZZ_CHECK(appended.ok());
  }
  WALRUS_FUZZ_CHECK(appended->first == last + 1 && appended->last == last + 1);
  check_record(log, last + 1, appended_payload);
  WALRUS_FUZZ_CHECK(log.close().ok());
  opened->reset();

  if (o.sync_always) fs.crash(wal::memory_file_system::crash_mode::tear_unsynced);
  auto reopened = wal::log::open(log_options(fs, o, wal::recovery_mode::strict));
  if (!reopened) {
    std::fprintf(stderr, "reopen failed: %s\n", reopened.error().to_string().c_str());
    WALRUS_FUZZ_CHECK(reopened.ok());
  }
  WALRUS_FUZZ_CHECK((*reopened)->first_sequence() == first);
  WALRUS_FUZZ_CHECK((*reopened)->last_sequence() == last + 1);
  WALRUS_FUZZ_CHECK(!(*reopened)->recovery().truncated());
  check_record(**reopened, last + 1, appended_payload);
  return true;
}

}  // namespace

int walrus_fuzz_wal(const uint8_t* data, size_t size) {
  byte_reader in{data, size};
  auto flags = in.u8();
  auto split = in.u16();
  fuzz_options o;
  o.two_files = (flags & 1) != 0;
  o.verify_all = (flags & 2) == 0;
  o.sync_always = (flags & 4) != 0;
  o.chunk_bytes = chunk_choices[(flags >> 4) & 3];
  o.records_per_read = read_choices[(flags >> 6) & 3];
  auto bytes = in.rest();
  size_t at = o.two_files ? std::min<size_t>(split, bytes.size()) : bytes.size();
  auto first_file = bytes.substr(0, at), second_file = bytes.substr(at);
  // Skip mode differs from strict mode only where strict mode refuses.
  if (!open_append_reopen(first_file, second_file, o, wal::recovery_mode::strict))
    open_append_reopen(first_file, second_file, o, wal::recovery_mode::skip_damaged_segments);
  return 0;
}

#ifdef WALRUS_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  return walrus_fuzz_wal(d, n);
}
#endif
