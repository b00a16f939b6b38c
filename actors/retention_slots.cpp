#include "actors/retention_slots.hpp"

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "base/crc32c.hpp"

namespace walrus {
namespace {

constexpr std::string_view header = "walrus-replica-slots 1\n";

status corrupt(const std::string& path, size_t line, const std::string& what) {
  return status{errc::corruption,
                "retention slots " + path + " line " + std::to_string(line) + ": " + what};
}

std::string encode(const retention_slots& slots) {
  std::string out{header};
  for (auto& [id, sequence] : slots)
    out += std::to_string(id.size()) + ":" + id + " " + std::to_string(sequence) + "\n";
  char crc[32];
  std::snprintf(crc, sizeof(crc), "crc32c %08" PRIx32 "\n", crc32c::value(out));
  return out + crc;
}

// Parses an unsigned decimal number at `pos` (advanced past it).
bool number(std::string_view text, size_t& pos, uint64_t& out) {
  size_t start = pos;
  out = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    auto digit = static_cast<uint64_t>(text[pos++] - '0');
    if (out > (UINT64_MAX - digit) / 10) return false;
    out = out * 10 + digit;
  }
  return pos > start;
}

std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string retention_slots_path(const std::string& dir) {
  return wal::join_path(dir, "replica-slots");
}

result<retention_slots> load_retention_slots(wal::file_system& fs, const std::string& path) {
  auto opened = fs.open(path, wal::open_mode::read_only);
  if (!opened) {
    // No file: no slots yet. Any other failure is reported (an unreadable
    // file must not pass for an empty one).
    auto names = fs.list(parent_of(path));
    bool exists = false;
    if (names)
      for (auto& n : *names) exists = exists || n == name_of(path);
    if (!names) return names.error();
    if (!exists) return retention_slots{};
    return opened.error();
  }
  auto& file = **opened;
  auto size = file.size();
  if (!size) return size.error();
  if (*size > (64u << 20)) return corrupt(path, 0, std::to_string(*size) + " bytes is too large");
  std::string text(*size, '\0');
  auto read = file.read_at(0, text.data(), text.size());
  if (!read) return read.error();
  text.resize(*read);
  std::string_view view{text};
  if (view.substr(0, header.size()) != header) return corrupt(path, 1, "not a slots file");
  auto crc_at = view.rfind("crc32c ");
  if (crc_at == std::string_view::npos || crc_at < header.size() ||
      view.size() != crc_at + 7 + 8 + 1 || view.back() != '\n')
    return corrupt(path, 0, "no checksum line at the end");
  uint32_t stored = 0;
  for (size_t i = crc_at + 7; i < crc_at + 15; ++i) {
    char c = view[i];
    uint32_t digit = c >= '0' && c <= '9'   ? static_cast<uint32_t>(c - '0')
                     : c >= 'a' && c <= 'f' ? static_cast<uint32_t>(c - 'a' + 10)
                                            : 16;
    if (digit == 16) return corrupt(path, 0, "a checksum that is not hexadecimal");
    stored = stored << 4 | digit;
  }
  if (crc32c::value(view.substr(0, crc_at)) != stored) return corrupt(path, 0, "checksum mismatch");
  retention_slots slots;
  size_t pos = header.size();
  for (size_t line = 2; pos < crc_at; ++line) {
    uint64_t length = 0;
    uint64_t sequence = 0;
    if (!number(view, pos, length) || pos >= crc_at || view[pos] != ':' ||
        length > crc_at - pos - 1)
      return corrupt(path, line, "a malformed replica id");
    std::string id{view.substr(pos + 1, length)};
    pos += 1 + length;
    if (pos >= crc_at || view[pos] != ' ' || !number(view, ++pos, sequence) || pos >= crc_at ||
        view[pos] != '\n')
      return corrupt(path, line, "a malformed sequence");
    ++pos;
    slots[std::move(id)] = sequence;
  }
  return slots;
}

status save_retention_slots(wal::file_system& fs, const std::string& path,
                            const retention_slots& slots) {
  auto temporary = path + ".tmp";
  (void)fs.remove(temporary);  // a leftover of a crash; usually absent
  auto created = fs.open(temporary, wal::open_mode::create_new);
  if (!created) return created.error();
  auto text = encode(slots);
  if (auto st = (*created)->append(text.data(), text.size()); !st.ok()) return st;
  if (auto st = (*created)->sync(); !st.ok()) return st;
  created->reset();
  if (auto st = fs.rename(temporary, path); !st.ok()) return st;
  return fs.sync_dir(parent_of(path));
}

}  // namespace walrus
