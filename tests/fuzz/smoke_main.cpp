// walrus_fuzz_smoke: a short, deterministic fuzz run of one target with any
// compiler, for CI (libFuzzer needs clang; this does not). It runs every file
// of a corpus directory through the target, then `executions` inputs made
// from them by seeded pseudo-random mutations: bit flips, byte and integer
// overwrites, truncations, insertions, erasures, duplicated chunks and
// splices of two corpus files. The seed is fixed, so every run executes the
// same inputs.
//
//   walrus_fuzz_smoke <resp|frame|wal> <corpus dir> [executions]
//   walrus_fuzz_smoke <resp|frame|wal> <input file>      (reproduce one input)
//
// A crash (a failed property aborts) writes the input that caused it to
// ./fuzz-smoke-crash-<target> and names it on stderr before the process dies;
// feed that file to the libFuzzer target or to this program to reproduce.
// Success prints "<N> executions, 0 crashes".
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_targets.hpp"

namespace {

using target_function = int (*)(const uint8_t*, size_t);
using input = std::vector<uint8_t>;

struct named_target {
  const char* name;
  target_function run;
};

constexpr named_target targets[] = {
    {"resp", walrus_fuzz_resp},
    {"frame", walrus_fuzz_frame},
    {"wal", walrus_fuzz_wal},
};

constexpr uint64_t seed = 0x77616C727573;  // "walrus"
constexpr size_t max_input_bytes = 8192;
constexpr uint64_t default_executions = 10000;

// -- crash reporting (async-signal-safe: open, write, close only) ---------------

char crash_path[256];
const uint8_t* current_data = nullptr;
size_t current_size = 0;

void write_all(int fd, const void* data, size_t size) {
  auto bytes = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, bytes, size);
    if (n <= 0) return;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
}

void save_current_input() {
  int fd = ::open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  if (current_data != nullptr) write_all(fd, current_data, current_size);
  ::close(fd);
  static const char note[] = "walrus_fuzz_smoke: crashing input saved to ";
  write_all(STDERR_FILENO, note, sizeof(note) - 1);
  write_all(STDERR_FILENO, crash_path, std::strlen(crash_path));
  write_all(STDERR_FILENO, "\n", 1);
}

extern "C" void on_crash_signal(int signal_number) {
  save_current_input();
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void install_crash_handlers(const char* target) {
  std::snprintf(crash_path, sizeof(crash_path), "fuzz-smoke-crash-%s", target);
  for (int s : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(s, on_crash_signal);
}

// Runs one input; an escaping exception counts as a crash.
void execute(target_function run, const input& in) {
  current_data = in.data();
  current_size = in.size();
  try {
    run(in.data(), in.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "walrus_fuzz_smoke: exception: %s\n", e.what());
    save_current_input();
    std::abort();
  }
  current_data = nullptr;
  current_size = 0;
}

// -- mutations ------------------------------------------------------------------

class mutator {
 public:
  explicit mutator(const std::vector<input>& corpus) : corpus_(corpus), rng_(seed) {}

  input next() {
    input out = corpus_[below(corpus_.size())];
    auto rounds = 1 + below(4);
    for (uint64_t i = 0; i < rounds; ++i) mutate(out);
    if (out.size() > max_input_bytes) out.resize(max_input_bytes);
    return out;
  }

 private:
  // Uses the engine's raw output only: mt19937_64 is specified bit for bit,
  // the standard distributions are not, so every library runs the same inputs.
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  uint8_t interesting_byte() {
    static constexpr uint8_t values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x40, 0x20};
    return below(2) == 0 ? values[below(std::size(values))] : static_cast<uint8_t>(rng_());
  }

  // Lengths and sequence numbers live in little-endian integers: overwrite
  // 4 or 8 bytes with a boundary value (or a nearby one).
  void overwrite_integer(input& in) {
    static constexpr uint64_t values[] = {0,          1,          16,         300,
                                          65536,      1048576,    16777216,   0x7FFFFFFF,
                                          0xFFFFFFFF, 1ull << 32, ~0ull >> 1, ~0ull};
    size_t width = below(2) == 0 ? 4 : 8;
    if (in.size() < width) return;
    uint64_t v = values[below(std::size(values))] + below(3) - 1;
    size_t at = below(in.size() - width + 1);
    for (size_t i = 0; i < width; ++i) in[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }

  void mutate(input& in) {
    switch (below(8)) {
      case 0:  // flip a bit
        if (!in.empty()) in[below(in.size())] ^= static_cast<uint8_t>(1u << below(8));
        return;
      case 1:  // set a byte
        if (!in.empty()) in[below(in.size())] = interesting_byte();
        return;
      case 2: return overwrite_integer(in);
      case 3:  // truncate
        in.resize(below(in.size() + 1));
        return;
      case 4: {  // insert bytes
        auto at = in.begin() + static_cast<std::ptrdiff_t>(below(in.size() + 1));
        input bytes(1 + below(16));
        for (auto& b : bytes) b = interesting_byte();
        in.insert(at, bytes.begin(), bytes.end());
        return;
      }
      case 5: {  // erase a range
        if (in.empty()) return;
        auto from = below(in.size());
        auto count = 1 + below(std::min<uint64_t>(in.size() - from, 32));
        in.erase(in.begin() + static_cast<std::ptrdiff_t>(from),
                 in.begin() + static_cast<std::ptrdiff_t>(from + count));
        return;
      }
      case 6: {  // duplicate a chunk elsewhere
        if (in.empty()) return;
        auto from = below(in.size());
        auto count = 1 + below(std::min<uint64_t>(in.size() - from, 64));
        input chunk(in.begin() + static_cast<std::ptrdiff_t>(from),
                    in.begin() + static_cast<std::ptrdiff_t>(from + count));
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(below(in.size() + 1)), chunk.begin(),
                  chunk.end());
        return;
      }
      default: {  // splice: a prefix of this input, a suffix of another
        const input& other = corpus_[below(corpus_.size())];
        in.resize(below(in.size() + 1));
        auto from = below(other.size() + 1);
        in.insert(in.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        return;
      }
    }
  }

  const std::vector<input>& corpus_;
  std::mt19937_64 rng_;
};

// -- main -----------------------------------------------------------------------------

input read_file(const std::filesystem::path& path) {
  std::ifstream file{path, std::ios::binary};
  return input{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

int usage() {
  std::fprintf(stderr,
               "usage: walrus_fuzz_smoke <resp|frame|wal> <corpus dir> [executions]\n"
               "       walrus_fuzz_smoke <resp|frame|wal> <input file>\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) return usage();
  const named_target* target = nullptr;
  for (auto& t : targets)
    if (std::strcmp(t.name, argv[1]) == 0) target = &t;
  if (target == nullptr) return usage();
  std::filesystem::path where{argv[2]};
  install_crash_handlers(target->name);

  if (std::filesystem::is_regular_file(where)) {
    execute(target->run, read_file(where));
    std::printf("%s: 1 executions, 0 crashes\n", where.c_str());
    return 0;
  }
  std::vector<std::filesystem::path> paths;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator(where, ec))
    if (entry.is_regular_file()) paths.push_back(entry.path());
  if (ec || paths.empty()) {
    std::fprintf(stderr, "walrus_fuzz_smoke: no corpus files in %s\n", argv[2]);
    return 2;
  }
  std::sort(paths.begin(), paths.end());  // the same order, so the same inputs, everywhere
  uint64_t executions = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : default_executions;

  auto start = std::chrono::steady_clock::now();
  std::vector<input> corpus;
  for (auto& p : paths) {
    corpus.push_back(read_file(p));
    execute(target->run, corpus.back());
  }
  mutator mutations{corpus};
  for (uint64_t i = 0; i < executions; ++i) execute(target->run, mutations.next());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::printf("%s: %zu corpus inputs + %llu mutations in %lld ms: %llu executions, 0 crashes\n",
              target->name, corpus.size(), static_cast<unsigned long long>(executions),
              static_cast<long long>(ms),
              static_cast<unsigned long long>(corpus.size() + executions));
  return 0;
}
