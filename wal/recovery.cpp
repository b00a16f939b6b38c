#include "wal/recovery.hpp"

#include <algorithm>
#include <cassert>

#include "base/crc32c.hpp"
#include "wal/format.hpp"
#include "wal/segment_reader.hpp"

namespace walrus::wal {

std::string recovery_report::to_string() const {
  std::string out = "segments " + std::to_string(segments) + ", sequences " +
                    std::to_string(first_sequence) + ".." + std::to_string(last_sequence);
  if (truncated())
    out += "; torn tail of " + tail_file + " (" + tail_damage + ") truncated to " +
           std::to_string(truncated_to) + " bytes: dropped " + std::to_string(dropped_bytes) +
           " bytes, " + std::to_string(dropped_records) + " records";
  if (lost_data())
    out += "; skipped " + std::to_string(skipped_files.size()) + " damaged segment files (" +
           std::to_string(skipped_bytes) + " bytes), lost sequences " + std::to_string(lost_first) +
           ".." + std::to_string(lost_last);
  return out;
}

namespace {

// What one pass over a segment file found.
struct scan_result {
  uint64_t file_size = 0;
  bool full = false;           // records were scanned, not just the header
  uint64_t last_sequence = 0;  // last good record before any damage
  uint64_t last_commit = 0;    // sequence of the last good commit record
  uint64_t commit_end = 0;     // offset just after it (header end if none)
  uint64_t records = 0;
  bool header_ok = false;
  bool damaged = false;
  bool certainly_corrupt = false;  // damage a torn write cannot explain
  errc damage_code = errc::corruption;
  uint64_t damage_offset = 0;
  std::string damage_what;
  uint64_t valid_after = 0;  // CRC-valid records found after the damage
  uint64_t valid_after_offset = 0;
  uint64_t highest_sequence = 0;  // highest sequence of any valid record
};

void set_damage(scan_result& scan, uint64_t offset, std::string what, bool certain,
                errc code = errc::corruption) {
  assert(!scan.damaged);
  scan.damaged = true;
  scan.damage_offset = offset;
  scan.damage_what = std::move(what);
  scan.certainly_corrupt = certain;
  scan.damage_code = code;
}

// Looks for CRC-valid records after damage at `from`, as a torn write leaves
// none (LevelDB's rule). Candidates must have a plausible sequence, which
// keeps CRC checks over garbage rare.
status probe_after_damage(file& segment, uint64_t from, uint64_t last_good, scan_result& scan) {
  assert(from <= scan.file_size);
  std::string rest(static_cast<size_t>(scan.file_size - from), '\0');
  auto got = segment.read_at(from, rest.data(), rest.size());
  if (!got) return got.error();
  rest.resize(*got);
  const uint64_t max_plausible = last_good + rest.size() / record_header_bytes + 1;
  for (size_t i = 1; i + record_header_bytes <= rest.size(); ++i) {
    const char* at = rest.data() + i;
    uint64_t sequence = get_le<uint64_t>(at + 9);
    if (sequence <= last_good || sequence > max_plausible) continue;
    record_view view;
    size_t bytes = 0;
    if (decode_record(at, rest.size() - i, view, bytes) != decode_outcome::ok) continue;
    if (scan.valid_after++ == 0) scan.valid_after_offset = from + i;
    scan.highest_sequence = std::max(scan.highest_sequence, sequence);
    i += bytes - 1;
  }
  return ok_status();
}

status scan_header(file& segment, uint64_t name_first, scan_result& scan, const std::string& path) {
  if (scan.file_size < segment_header_bytes) {
    set_damage(scan, 0,
               "file is " + std::to_string(scan.file_size) + " bytes, shorter than the header",
               false);
    return ok_status();
  }
  char header[segment_header_bytes];
  auto got = segment.read_at(0, header, sizeof(header));
  if (!got) return got.error();
  if (*got != sizeof(header)) return status{errc::io_error, path + ": short read of the header"};
  auto first = decode_segment_header(header);
  if (!first) {
    bool certain = first.error().code() != errc::corruption;  // e.g. a newer version
    set_damage(scan, 0, first.error().message(), certain, first.error().code());
  } else if (*first != name_first) {
    set_damage(scan, 0,
               "segment header says first sequence " + std::to_string(*first) +
                   ", the file name says " + std::to_string(name_first),
               true);
  } else {
    scan.header_ok = true;
  }
  return ok_status();
}

status scan_records(file& segment, uint64_t name_first, scan_result& scan) {
  segment_reader reader;
  reader.reset(&segment, segment_header_bytes, scan.file_size);
  uint64_t expected = name_first;
  for (;;) {
    uint64_t offset = reader.offset();
    record_view view;
    auto step = reader.next(view);
    if (!step) return step.error();
    if (*step == segment_reader::step::end) break;
    if (*step == segment_reader::step::damaged) {
      bool certain = reader.damage() == decode_outcome::bad_type;  // its CRC matched
      set_damage(scan, offset, to_string(reader.damage()), certain);
      break;
    }
    assert(*step == segment_reader::step::record);
    if (view.sequence != expected) {
      set_damage(scan, offset,
                 "record has sequence " + std::to_string(view.sequence) + ", expected " +
                     std::to_string(expected),
                 true);
      break;
    }
    ++expected;
    ++scan.records;
    scan.last_sequence = view.sequence;
    if (view.commit()) {
      scan.last_commit = view.sequence;
      scan.commit_end = reader.offset();
    }
  }
  return ok_status();
}

// Scans `segment`: its header always, its records when `full`.
result<scan_result> scan_segment(file& segment, const std::string& path, uint64_t name_first,
                                 bool full) {
  scan_result scan;
  auto size = segment.size();
  if (!size) return size.error();
  scan.file_size = *size;
  scan.last_sequence = name_first - 1;
  scan.last_commit = name_first - 1;
  scan.commit_end = segment_header_bytes;
  scan.full = full;
  if (auto st = scan_header(segment, name_first, scan, path); !st.ok()) return st;
  if (scan.header_ok && full)
    if (auto st = scan_records(segment, name_first, scan); !st.ok()) return st;
  if (scan.damaged) {
    uint64_t from = scan.header_ok ? scan.damage_offset : 0;
    if (auto st = probe_after_damage(segment, from, scan.last_sequence, scan); !st.ok()) return st;
  }
  scan.highest_sequence = std::max(scan.highest_sequence, scan.last_sequence);
  assert(scan.last_commit <= scan.last_sequence);
  assert(scan.commit_end <= std::max<uint64_t>(scan.file_size, segment_header_bytes));
  return scan;
}

// One recovery pass over a directory, segment by segment (oldest first).
class recovery {
 public:
  recovery(file_system& fs, std::string dir, const recovery_options& options)
      : fs_(fs), dir_(std::move(dir)), options_(options) {}

  result<recovered_log> run();

 private:
  std::string path_of(size_t k) const { return join_path(dir_, files_[k].name); }
  bool is_last(size_t k) const { return k + 1 == files_.size(); }
  status examine(size_t k);
  status check_continuity(size_t k);
  status classify(size_t k);
  status on_damage(size_t k, status error);
  status repair_tail();
  result<recovered_log> finish();
  result<recovered_log> start_fresh(uint64_t first_sequence);

  file_system& fs_;
  const std::string dir_;
  const recovery_options options_;
  std::vector<segment_file> files_;
  std::vector<scan_result> scans_;  // parallel to files_
  size_t start_ = 0;                // first retained segment
  std::unique_ptr<file> last_file_;
  recovery_report report_;
};

result<recovered_log> recovery::run() {
  if (auto st = fs_.create_directories(dir_); !st.ok()) return st;
  auto listed = list_segment_files(fs_, dir_);
  if (!listed) return listed.error();
  files_ = std::move(*listed);
  if (files_.empty()) return start_fresh(1);
  scans_.resize(files_.size());
  for (size_t k = 0; k < files_.size(); ++k)
    if (auto st = examine(k); !st.ok()) return st;
  return finish();
}

status recovery::examine(size_t k) {
  std::string path = path_of(k);
  auto opened = fs_.open(path, is_last(k) ? open_mode::read_write : open_mode::read_only);
  if (!opened) return opened.error();
  std::unique_ptr<file> segment = std::move(*opened);
  bool full = is_last(k) || options_.verify_all_segments;
  auto scan = scan_segment(*segment, path, files_[k].first_sequence, full);
  if (!scan) return scan.error();
  scans_[k] = std::move(*scan);
  report_.segments_scanned += scans_[k].full ? 1 : 0;
  // A previous process may have written without syncing (policy none).
  if (options_.durable)
    if (auto st = segment->sync(); !st.ok()) return st;
  if (is_last(k)) last_file_ = std::move(segment);
  if (auto st = check_continuity(k); !st.ok()) return st;
  return classify(k);
}

status recovery::check_continuity(size_t k) {
  if (k == start_ || !scans_[k - 1].full) return ok_status();
  uint64_t expected = scans_[k - 1].last_sequence + 1;
  if (files_[k].first_sequence == expected) return ok_status();
  std::string message = path_of(k) + " offset 0: segment starts at sequence " +
                        std::to_string(files_[k].first_sequence) + ", expected " +
                        std::to_string(expected) + " (" + files_[k - 1].name + " ends at " +
                        std::to_string(expected - 1) + ")";
  return on_damage(k - 1, status{errc::corruption, std::move(message)});
}

status recovery::classify(size_t k) {
  assert(k >= start_);
  const scan_result& scan = scans_[k];
  if (scan.damaged) {
    bool corrupt = scan.certainly_corrupt || scan.valid_after > 0 || !is_last(k);
    if (!corrupt) return ok_status();  // a torn tail, repaired by finish()
    std::string message =
        path_of(k) + " offset " + std::to_string(scan.damage_offset) + ": " + scan.damage_what;
    if (scan.valid_after > 0 && !scan.certainly_corrupt)
      message += " (a valid record follows at offset " + std::to_string(scan.valid_after_offset) +
                 ", so this is not a torn tail)";
    return on_damage(k, status{scan.damage_code, std::move(message)});
  }
  if (scan.full && !is_last(k) && scan.last_commit != scan.last_sequence)
    return on_damage(
        k, status{errc::corruption, path_of(k) + " offset " + std::to_string(scan.commit_end) +
                                        ": segment ends inside a transaction (sequences " +
                                        std::to_string(scan.last_commit + 1) + ".." +
                                        std::to_string(scan.last_sequence) + " have no commit)"});
  return ok_status();
}

// Strict mode: the error. Skip mode: segments start_..k are renamed aside.
status recovery::on_damage(size_t k, status error) {
  assert(!error.ok());
  assert(k >= start_ && k < files_.size());
  if (options_.mode == recovery_mode::strict) return error;
  report_.damage.push_back(error.message());
  if (report_.lost_first == 0) report_.lost_first = files_[start_].first_sequence;
  uint64_t lost_last = is_last(k)
                           ? std::max(scans_[k].highest_sequence, files_[k].first_sequence - 1)
                           : files_[k + 1].first_sequence - 1;
  report_.lost_last = std::max(report_.lost_last, lost_last);
  if (is_last(k)) last_file_.reset();
  for (size_t i = start_; i <= k; ++i) {
    std::string aside = path_of(i) + ".skipped";
    if (auto st = fs_.rename(path_of(i), aside); !st.ok()) return st;
    report_.skipped_files.push_back(std::move(aside));
    report_.skipped_bytes += scans_[i].file_size;
  }
  if (options_.durable)
    if (auto st = fs_.sync_dir(dir_); !st.ok()) return st;
  start_ = k + 1;
  return ok_status();
}

status recovery::repair_tail() {
  const size_t k = files_.size() - 1;
  scan_result& scan = scans_[k];
  bool partial = scan.last_commit != scan.last_sequence;
  if (!scan.damaged && !partial) return ok_status();
  assert(last_file_ != nullptr);
  report_.tail_file = path_of(k);
  report_.tail_damage =
      scan.damaged ? "offset " + std::to_string(scan.damage_offset) + ": " + scan.damage_what
                   : "unfinished transaction at end of file";
  report_.dropped_records = scan.last_sequence - scan.last_commit;
  uint64_t keep = scan.header_ok ? scan.commit_end : 0;
  report_.dropped_bytes = scan.file_size - std::min(keep, scan.file_size);
  if (auto st = last_file_->truncate(keep); !st.ok()) return st;
  if (!scan.header_ok) {  // torn while the segment was being created
    char header[segment_header_bytes];
    encode_segment_header(files_[k].first_sequence, header);
    if (auto st = last_file_->append(header, sizeof(header)); !st.ok()) return st;
    keep = segment_header_bytes;
  }
  if (options_.durable)
    if (auto st = last_file_->sync(); !st.ok()) return st;
  report_.truncated_to = keep;
  scan.file_size = keep;
  scan.last_sequence = scan.last_commit;
  return ok_status();
}

result<recovered_log> recovery::finish() {
  if (start_ == files_.size())  // skip mode set aside the last segment too
    return start_fresh(report_.lost_last + 1);
  if (auto st = repair_tail(); !st.ok()) return st;
  recovered_log out;
  for (size_t k = start_; k < files_.size(); ++k) {
    const scan_result& scan = scans_[k];
    segment_entry entry;
    entry.first_sequence = files_[k].first_sequence;
    entry.last_sequence = scan.full ? scan.last_sequence : files_[k + 1].first_sequence - 1;
    entry.size_bytes = scan.file_size;
    entry.path = path_of(k);
    entry.active = is_last(k);
    if (scan.full) report_.records += entry.records();
    out.segments.push_back(std::move(entry));
  }
  out.active_file = std::move(last_file_);
  report_.segments = out.segments.size();
  report_.first_sequence = out.segments.front().first_sequence;
  report_.last_sequence = out.segments.back().last_sequence;
  out.report = std::move(report_);
  assert(out.active_file != nullptr);
  return out;
}

result<recovered_log> recovery::start_fresh(uint64_t first_sequence) {
  assert(first_sequence > 0);
  auto created = create_segment(fs_, dir_, first_sequence, options_.durable);
  if (!created) return created.error();
  recovered_log out;
  segment_entry entry;
  entry.first_sequence = first_sequence;
  entry.last_sequence = first_sequence - 1;
  entry.size_bytes = segment_header_bytes;
  entry.path = join_path(dir_, segment_file_name(first_sequence));
  entry.active = true;
  out.segments.push_back(std::move(entry));
  out.active_file = std::move(*created);
  report_.segments = 1;
  report_.first_sequence = first_sequence;
  report_.last_sequence = first_sequence - 1;
  out.report = std::move(report_);
  return out;
}

}  // namespace

result<recovered_log> recover(file_system& fs, const std::string& dir,
                              const recovery_options& options) {
  assert(!dir.empty());
  return recovery{fs, dir, options}.run();
}

}  // namespace walrus::wal
