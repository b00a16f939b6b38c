#include "tests/process/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <random>
#include <thread>

namespace walrus::kv::process_tests {

namespace fs = std::filesystem;

std::string program;
std::atomic<int> checks{0};
std::atomic<int> failures{0};

namespace {

std::vector<test_case>& registry() {
  static std::vector<test_case> tests;
  return tests;
}

// -- watchdog state: fixed storage, read by the signal handler ---------------------

constexpr size_t max_watched_pids = 64;
constexpr size_t max_cleanups = 8;
constexpr size_t max_cleanup_args = 8;
constexpr size_t max_cleanup_arg_bytes = 128;

char watchdog_dir[4096];
volatile pid_t watchdog_pids[max_watched_pids];

struct cleanup_command {
  volatile bool used;
  char args[max_cleanup_args][max_cleanup_arg_bytes];
  size_t argc;
};
cleanup_command cleanups[max_cleanups];

// Runs argv (async-signal-safe: fork, execv, waitpid) and waits for it.
void run_and_wait(char* const* argv) {
  pid_t child = ::fork();
  if (child == 0) {
    int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
    }
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  int st = 0;
  if (child > 0) ::waitpid(child, &st, 0);
}

// Kills the children, runs the clean-up commands, removes the test folder.
void emergency_cleanup() {
  for (auto& p : watchdog_pids)
    if (p > 0) ::kill(p, SIGKILL);
  for (auto& c : cleanups) {
    if (!c.used) continue;
    char* argv[max_cleanup_args + 1];
    for (size_t i = 0; i < c.argc; ++i) argv[i] = c.args[i];
    argv[c.argc] = nullptr;
    run_and_wait(argv);
  }
  if (watchdog_dir[0] != '\0') {
    char rm[] = "/bin/rm", rf[] = "-rf";
    char* argv[] = {rm, rf, watchdog_dir, nullptr};
    run_and_wait(argv);
  }
}

void on_alarm(int) {
  const char msg[] = "FAIL: the test did not finish in time (watchdog)\n";
  auto ignored = ::write(1, msg, sizeof(msg) - 1);
  (void)ignored;
  emergency_cleanup();
  ::_exit(3);
}

void on_terminate(int sig) {
  const char msg[] = "FAIL: interrupted by a signal; cleaning up\n";
  auto ignored = ::write(1, msg, sizeof(msg) - 1);
  (void)ignored;
  emergency_cleanup();
  ::_exit(128 + sig);
}

}  // namespace

registration::registration(std::vector<test_case> tests) {
  for (auto& t : tests) registry().push_back(std::move(t));
}

void register_pid(pid_t pid) {
  for (auto& p : watchdog_pids)
    if (p == pid) return;
  for (auto& p : watchdog_pids)
    if (p == 0) {
      p = pid;
      return;
    }
}

void forget_pid(pid_t pid) {
  for (auto& p : watchdog_pids)
    if (p == pid) p = 0;
}

void arm_watchdog(unsigned seconds) {
  ::alarm(seconds);
}

int register_cleanup(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.size() > max_cleanup_args) return -1;
  for (auto& a : argv)
    if (a.size() >= max_cleanup_arg_bytes) return -1;
  for (size_t slot = 0; slot < max_cleanups; ++slot) {
    auto& c = cleanups[slot];
    if (c.used) continue;
    for (size_t i = 0; i < argv.size(); ++i)
      std::snprintf(c.args[i], max_cleanup_arg_bytes, "%s", argv[i].c_str());
    c.argc = argv.size();
    c.used = true;  // last: the handler sees a complete command or none
    return static_cast<int>(slot);
  }
  return -1;
}

void forget_cleanup(int slot) {
  if (slot >= 0 && static_cast<size_t>(slot) < max_cleanups) cleanups[slot].used = false;
}

temp_dir::temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/walrus-kv-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw test_failed("mkdtemp failed");
  path = buf.data();
  std::snprintf(watchdog_dir, sizeof(watchdog_dir), "%s", path.c_str());
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path, ec);
  watchdog_dir[0] = '\0';
}

std::unique_ptr<client> connect(const std::string& host, uint16_t port) {
  return need(client::connect(host, port), "connect to " + host + ":" + std::to_string(port));
}

std::unique_ptr<client> connect(uint16_t port) {
  return need(client::connect("127.0.0.1", port), "connect to port " + std::to_string(port));
}

reply run(client& c, std::initializer_list<std::string_view> args) {
  return need(c.command(args), "command " + std::string(*args.begin()));
}

bool is_ok(const reply& r) {
  return r.type == reply::kind::simple && r.text == "OK";
}

std::map<std::string, std::string> info(client& c, const std::string& section) {
  auto r = run(c, {"INFO", section});
  if (r.type != reply::kind::bulk) return {};
  return parse_info(r.text);
}

std::map<std::string, std::string> info(uint16_t port, const std::string& section) {
  auto c = connect(port);
  return info(*c, section);
}

uint64_t number(const std::map<std::string, std::string>& fields, const std::string& name) {
  auto i = fields.find(name);
  return i == fields.end() ? 0 : std::strtoull(i->second.c_str(), nullptr, 10);
}

uint64_t info_number(uint16_t port, const std::string& section, const std::string& name) {
  return number(info(port, section), name);
}

std::string digest_of(uint16_t port) {
  auto c = connect(port);
  auto r = run(*c, {"DEBUG", "DIGEST"});
  REQUIRE(r.type == reply::kind::simple && r.text.size() == 32, "DEBUG DIGEST: " + r.to_string());
  return r.text;
}

int64_t dbsize_of(uint16_t port) {
  auto c = connect(port);
  return run(*c, {"DBSIZE"}).integer;
}

sockaddr_in loopback_address(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  auto addr = loopback_address(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void close_with_reset(int fd) {
  linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(fd);
}

uint64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

seeded_rounds parse_seeded_rounds(const test_args& args, const std::string& test,
                                  const std::string& rounds_name, unsigned default_rounds) {
  seeded_rounds o{default_rounds, std::random_device{}() % 1000000};
  auto flag = "--" + rounds_name;
  for (size_t i = 0; i < args.size(); ++i) {
    bool has_value = i + 1 < args.size();
    if (args[i] == flag && has_value)
      o.rounds = static_cast<unsigned>(std::strtoul(args[++i].c_str(), nullptr, 10));
    else if (args[i] == "--seed" && has_value)
      o.seed = std::strtoull(args[++i].c_str(), nullptr, 10);
    else
      throw test_failed(test + ": bad argument '" + args[i] + "' (usage: [" + flag +
                        " N] [--seed S])");
  }
  auto seed = static_cast<unsigned long long>(o.seed);
  std::printf("%s: seed %llu, %u %s (replay: %s %s %u --seed %llu)\n", test.c_str(), seed, o.rounds,
              rounds_name.c_str(), test.c_str(), flag.c_str(), o.rounds, seed);
  return o;
}

bool eventually(const std::function<bool()>& pred, milliseconds limit) {
  auto deadline = steady::now() + limit;
  while (steady::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

node_process cluster::start(const std::vector<std::string>& args, const std::string& log) {
  auto p = need(node_process::start(program, args, (dir.path / log).string()), "start " + log);
  register_pid(p.pid());
  return p;
}

void cluster::start_primary(std::vector<std::string> extra) {
  std::vector<std::string> args{"primary", "--dir", (dir.path / "primary").string()};
  if (primary.resp_port() == 0) {
    args.insert(args.end(), {"--port", "0", "--repl-port", "0"});
  } else {  // a restart keeps the ports
    args.insert(args.end(), {"--port", std::to_string(primary.resp_port()), "--repl-port",
                             std::to_string(primary.repl_port())});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  if (primary.pid() > 0) forget_pid(primary.pid());
  primary = start(args, "primary.log");
}

node_process& cluster::start_replica(size_t n, std::vector<std::string> extra) {
  auto name = "replica-" + std::to_string(n);
  std::vector<std::string> args{"replica",
                                "--dir",
                                (dir.path / name).string(),
                                "--primary",
                                "127.0.0.1:" + std::to_string(primary.repl_port()),
                                "--port",
                                "0",
                                "--replica-id",
                                name};
  args.insert(args.end(), extra.begin(), extra.end());
  if (replicas.size() < n) replicas.resize(n);
  if (replicas[n - 1].pid() > 0) forget_pid(replicas[n - 1].pid());
  replicas[n - 1] = start(args, name + ".log");
  return replicas[n - 1];
}

uint64_t cluster::primary_sequence() {
  return info_number(primary.resp_port(), "replication", "master_repl_offset");
}

bool cluster::caught_up(node_process& r, uint64_t sequence, milliseconds limit) {
  return eventually(
      [&] { return info_number(r.resp_port(), "replication", "applied_sequence") >= sequence; },
      limit);
}

}  // namespace walrus::kv::process_tests

int main(int argc, char** argv) {
  using namespace walrus::kv::process_tests;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s WALRUS_KV_BINARY TEST [ARGS...]\ntests:\n", argv[0]);
    for (auto& t : registry()) std::fprintf(stderr, "  %s %s\n", t.name.c_str(), t.usage.c_str());
    return 2;
  }
  program = std::filesystem::absolute(argv[1]).string();
  std::string name = argv[2];
  test_args args(argv + 3, argv + argc);
  const test_case* test = nullptr;
  for (auto& t : registry())
    if (t.name == name) test = &t;
  if (test == nullptr) {
    std::fprintf(stderr, "unknown test '%s'\n", name.c_str());
    return 2;
  }
  if (!args.empty() && test->usage.empty()) {
    std::fprintf(stderr, "test '%s' takes no arguments\n", name.c_str());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGALRM, on_alarm);
  ::signal(SIGTERM, on_terminate);
  ::signal(SIGINT, on_terminate);
  arm_watchdog(test->watchdog_s);
  auto start = steady::now();
  bool skipped = false;
  try {
    test->run(args);
  } catch (const test_skipped& e) {
    skipped = true;
    std::printf("SKIP: %s\n", e.what());
  } catch (const test_failed& e) {
    if (failures == 0) ++failures;  // thrown without REQUIRE or need
    std::printf("FAIL %s\n", e.what());
  } catch (const std::exception& e) {
    ++failures;
    std::printf("FAIL exception: %s\n", e.what());
  }
  ::alarm(0);
  auto ms = std::chrono::duration_cast<milliseconds>(steady::now() - start).count();
  std::printf("%s: %d checks, %d failed, %ld ms: %s\n", name.c_str(), checks.load(),
              failures.load(), static_cast<long>(ms),
              failures != 0 ? "FAILED"
              : skipped     ? "SKIPPED"
                            : "PASSED");
  return failures == 0 ? 0 : 1;
}
