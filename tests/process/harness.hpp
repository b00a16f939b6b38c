// The harness of the multi-process tests of walrus-kv (walrus_kv_process_tests):
// real server processes driven by the RESP client of apps/kv/client.hpp.
//
// Usage: walrus_kv_process_tests WALRUS_KV_BINARY TEST [ARGS...]
// Prints one line per check that fails and a summary; exits 0 when every
// check passed (also when the test skipped itself: it then prints
// "SKIP: <reason>"). Each test runs in a fresh folder under $TMPDIR (or
// /tmp) that is removed at the end, also on failure; every child process is
// killed at the end (and dies with this process: PR_SET_PDEATHSIG). A
// watchdog (SIGALRM) ends a test that hangs, after killing its children,
// running the registered clean-up commands and removing its folder.
//
// Test files register their tests with a static `registration` object; the
// main() of harness.cpp runs the one named on the command line.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "apps/kv/client.hpp"
#include "apps/kv/server_process.hpp"

namespace walrus::kv::process_tests {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// -- registry ---------------------------------------------------------------------

using test_args = std::vector<std::string>;

struct test_case {
  std::string name;
  std::function<void(const test_args&)> run;
  unsigned watchdog_s;  // the watchdog's limit; a test may re-arm it (arm_watchdog)
  std::string usage;    // its arguments ("[--cycles N]"); empty: it takes none
};

struct registration {
  explicit registration(std::vector<test_case> tests);
};

// -- checks -----------------------------------------------------------------------

extern std::string program;  // the walrus-kv binary (absolute path)
// Updated by the test's main thread only; atomic so that helper threads may read them.
extern std::atomic<int> checks;
extern std::atomic<int> failures;

struct test_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by a test that cannot run here: main prints "SKIP: <what>" and exits 0.
struct test_skipped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define CHECK(cond, what)                                                                        \
  do {                                                                                           \
    ++::walrus::kv::process_tests::checks;                                                       \
    if (!(cond)) {                                                                               \
      ++::walrus::kv::process_tests::failures;                                                   \
      std::printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, std::string(what).c_str()); \
    }                                                                                            \
  } while (false)

#define REQUIRE(cond, what)                                                                    \
  do {                                                                                         \
    ++::walrus::kv::process_tests::checks;                                                     \
    if (!(cond)) {                                                                             \
      ++::walrus::kv::process_tests::failures;                                                 \
      throw ::walrus::kv::process_tests::test_failed(std::string(__FILE__) + ":" +             \
                                                     std::to_string(__LINE__) + ": " + #cond + \
                                                     ": " + std::string(what));                \
    }                                                                                          \
  } while (false)

template <class T>
T need(result<T> r, const std::string& what) {
  if (!r) {
    ++failures;
    throw test_failed(what + ": " + r.error().to_string());
  }
  return std::move(*r);
}

// -- arguments --------------------------------------------------------------------

// A randomised test's arguments "[--<rounds_name> N] [--seed S]": how many
// rounds (cycles, cuts...) and the seed, drawn at random unless given.
// Throws test_failed on any other argument; prints the line that replays the run.
struct seeded_rounds {
  unsigned rounds = 0;
  uint64_t seed = 0;
};

seeded_rounds parse_seeded_rounds(const test_args& args, const std::string& test,
                                  const std::string& rounds_name, unsigned default_rounds);

// -- watchdog ---------------------------------------------------------------------

// Children the watchdog kills (SIGKILL) when it fires; forget_pid once reaped.
void register_pid(pid_t pid);
void forget_pid(pid_t pid);
// Restarts the watchdog with a new limit (tests whose length depends on their arguments).
void arm_watchdog(unsigned seconds);
// A command (absolute path first, at most 8 arguments of < 128 bytes) the
// watchdog runs after killing the children, also when this process gets
// SIGTERM or SIGINT; returns its slot for forget_cleanup. Tests run their
// clean-up themselves on every other path.
int register_cleanup(const std::vector<std::string>& argv);
void forget_cleanup(int slot);

// -- folders, clients, nodes ------------------------------------------------------

// A fresh folder, removed on destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

std::unique_ptr<client> connect(uint16_t port);
std::unique_ptr<client> connect(const std::string& host, uint16_t port);
reply run(client& c, std::initializer_list<std::string_view> args);
bool is_ok(const reply& r);
std::map<std::string, std::string> info(client& c, const std::string& section);
std::map<std::string, std::string> info(uint16_t port, const std::string& section);
uint64_t info_number(uint16_t port, const std::string& section, const std::string& name);
uint64_t number(const std::map<std::string, std::string>& fields, const std::string& name);
bool eventually(const std::function<bool()>& pred, milliseconds limit = milliseconds(20000));
// DEBUG DIGEST of the node at `port` (required: a 32-character digest) and its DBSIZE.
std::string digest_of(uint16_t port);
int64_t dbsize_of(uint16_t port);
// VmRSS of process `pid` in bytes; 0 when it is gone.
uint64_t rss_bytes(pid_t pid);

// -- raw sockets (for what the RESP client does not do) -----------------------------
sockaddr_in loopback_address(uint16_t port);
// A blocking TCP socket connected to 127.0.0.1:port, or -1.
int connect_loopback(uint16_t port);
// Closes `fd` with a reset (RST) instead of an orderly FIN.
void close_with_reset(int fd);

// A primary and its replicas, in one test folder.
struct cluster {
  temp_dir dir;
  node_process primary;
  std::vector<node_process> replicas;
  std::vector<std::string> primary_args;

  node_process start(const std::vector<std::string>& args, const std::string& log);
  // Starts the primary, or restarts it on its folder and ports.
  void start_primary(std::vector<std::string> extra = {});
  // Starts replica n (1-based), or restarts it on its folder.
  node_process& start_replica(size_t n, std::vector<std::string> extra = {});
  uint64_t primary_sequence();
  bool caught_up(node_process& r, uint64_t sequence, milliseconds limit = milliseconds(20000));
};

}  // namespace walrus::kv::process_tests
