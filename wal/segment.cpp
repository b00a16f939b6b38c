#include "wal/segment.hpp"

#include <algorithm>
#include <cassert>

#include "wal/format.hpp"

namespace walrus::wal {

result<std::vector<segment_file>> list_segment_files(file_system& fs, const std::string& dir) {
  auto names = fs.list(dir);
  if (!names) return names.error();
  std::vector<segment_file> segments;
  for (auto& name : *names)
    if (auto first = parse_segment_file_name(name)) segments.push_back({*first, std::move(name)});
  std::sort(segments.begin(), segments.end(), [](const segment_file& a, const segment_file& b) {
    return a.first_sequence < b.first_sequence;
  });
  for (size_t i = 1; i < segments.size(); ++i)
    assert(segments[i - 1].first_sequence < segments[i].first_sequence);
  return segments;
}

result<std::unique_ptr<file>> create_segment(file_system& fs, const std::string& dir,
                                             uint64_t first_sequence, bool durable) {
  assert(first_sequence > 0);
  std::string path = join_path(dir, segment_file_name(first_sequence));
  auto created = fs.open(path, open_mode::create_new);
  if (!created) return created.error();
  std::unique_ptr<file> segment = std::move(*created);
  char header[segment_header_bytes];
  encode_segment_header(first_sequence, header);
  if (auto st = segment->append(header, sizeof(header)); !st.ok()) return st;
  if (durable) {
    if (auto st = segment->sync(); !st.ok()) return st;
    if (auto st = fs.sync_dir(dir); !st.ok()) return st;
  }
  return segment;
}

}  // namespace walrus::wal
