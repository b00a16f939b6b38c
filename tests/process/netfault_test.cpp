// Network faults between a walrus-kv primary and its replica:
//
//   walrus_kv_process_tests WALRUS_KV_BINARY netfault
//
// Needs root, `ip` and `tc`; otherwise it prints "SKIP: <reason>" and exits
// 0. It creates two network namespaces (names carry this process's pid)
// joined by a veth pair with private 10.x addresses, runs the primary in
// one (`ip netns exec`, RESP and replication bound to its veth address) and
// the replica in the other, both `--sync none` (this test is about the
// network, not the disk: the load is paced, not limited by fdatasync). The test's own client
// sockets are opened inside those namespaces (setns(2) around connect), so no packet leaves them.
// Faults are tc qdiscs on both veth ends (both directions):
//   * netem delay 20ms with 5ms jitter, netem loss 5%, netem reordering:
//     under write load, the replica converges while the fault is on;
//   * a full partition for ~10 s while the primary keeps taking writes
//     (netem loss 100%; without netem, a tbf whose burst is smaller than
//     any frame, which drops every packet as well): the primary's INFO shows
//     the replica down and lagging, its RSS stays below the baseline + the
//     replication window (8 MiB) + 32 MiB, and after the heal the replica
//     converges (same sequence, DEBUG DIGEST and DBSIZE).
// A kernel without netem (CONFIG_NET_SCH_NETEM) runs the partition only,
// and says so. The namespaces (and with them the veth pair) are deleted on
// every exit path: normally, on a failure, by the watchdog and on SIGTERM.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "apps/kv/client.hpp"
#include "apps/kv/server_process.hpp"
#include "tests/process/harness.hpp"

namespace {

using namespace walrus;
using namespace walrus::kv;
using namespace walrus::kv::process_tests;

constexpr size_t key_count = 2000;
constexpr size_t value_bytes = 1024;
constexpr size_t batch_size = 100;
constexpr milliseconds batch_interval{25};  // at most 4000 SETs (4 MiB) per second
constexpr uint64_t window_bytes = 8ull << 20;
constexpr uint64_t rss_margin_bytes = 32ull << 20;
constexpr milliseconds impaired_load{3000};
constexpr milliseconds partition_length{10000};
// The partition lasts until this much was written (more than the window),
// unless the machine is too slow for it within partition_max_length.
constexpr uint64_t partition_min_bytes = 12ull << 20;
constexpr milliseconds partition_max_length{60000};

std::string find_tool(const std::string& name) {
  for (auto dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

struct tool_result {
  int code = -1;
  std::string output;
};

// Runs argv (absolute path first) to its end: exit code and output.
tool_result run_tool(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, "pipe failed"};
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  tool_result out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) out.output.append(buf, n);
  ::close(fds[0]);
  int st = 0;
  if (pid > 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st)) out.code = WEXITSTATUS(st);
  while (!out.output.empty() && out.output.back() == '\n') out.output.pop_back();
  return out;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Two network namespaces joined by a veth pair; deleted on destruction.
class netns_lab {
 public:
  netns_lab(std::string ip, std::string tc) : ip_(std::move(ip)), tc_(std::move(tc)) {
    auto id = std::to_string(::getpid());
    ns_a = "walrus-nf-a-" + id;
    ns_b = "walrus-nf-b-" + id;
    veth_a = "wnfa" + id;  // interface names: at most 15 characters
    veth_b = "wnfb" + id;
    auto subnet = "10.231." + std::to_string(::getpid() % 250 + 1) + ".";
    addr_a = subnet + "1";
    addr_b = subnet + "2";
  }

  ~netns_lab() {
    run_tool({ip_, "netns", "del", ns_a});
    run_tool({ip_, "netns", "del", ns_b});
    run_tool({ip_, "link", "del", veth_a});  // only there if moving it failed
    for (int slot : cleanup_slots_) forget_cleanup(slot);
  }

  netns_lab(const netns_lab&) = delete;
  netns_lab& operator=(const netns_lab&) = delete;

  // Creates the namespaces and the link; test_skipped when this kernel or
  // sandbox does not allow it.
  void create() {
    for (auto& ns : {ns_a, ns_b})
      cleanup_slots_.push_back(register_cleanup({ip_, "netns", "del", ns}));
    cleanup_slots_.push_back(register_cleanup({ip_, "link", "del", veth_a}));
    auto a = run_tool({ip_, "netns", "add", ns_a});
    if (a.code != 0) throw test_skipped("cannot create a network namespace: " + a.output);
    must({ip_, "netns", "add", ns_b});
    auto link = run_tool({ip_, "link", "add", veth_a, "type", "veth", "peer", "name", veth_b});
    if (link.code != 0) throw test_skipped("cannot create a veth pair: " + link.output);
    must({ip_, "link", "set", veth_a, "netns", ns_a});
    must({ip_, "link", "set", veth_b, "netns", ns_b});
    for (auto [ns, dev, addr] :
         {std::tuple{ns_a, veth_a, addr_a}, std::tuple{ns_b, veth_b, addr_b}}) {
      must({ip_, "-n", ns, "addr", "add", addr + "/24", "dev", dev});
      must({ip_, "-n", ns, "link", "set", "lo", "up"});
      must({ip_, "-n", ns, "link", "set", dev, "up"});
    }
    auto probe =
        run_tool({tc_, "-n", ns_a, "qdisc", "add", "dev", veth_a, "root", "netem", "delay", "1ms"});
    netem = probe.code == 0;
    if (netem)
      must({tc_, "-n", ns_a, "qdisc", "del", "dev", veth_a, "root"});
    else
      netem_error = probe.output;
  }

  // Replaces the root qdisc of both veth ends (both directions).
  void impair(const std::vector<std::string>& qdisc) {
    for (auto [ns, dev] : {std::pair{ns_a, veth_a}, std::pair{ns_b, veth_b}}) {
      std::vector<std::string> argv{tc_, "-n", ns, "qdisc", "replace", "dev", dev, "root"};
      argv.insert(argv.end(), qdisc.begin(), qdisc.end());
      must(argv);
    }
  }

  // Every packet between the namespaces is dropped.
  void partition() {
    if (netem)
      impair({"netem", "loss", "100%"});
    else  // every frame is larger than the burst: tbf drops it
      impair({"tbf", "rate", "1kbit", "burst", "10", "limit", "10"});
  }

  void heal() {
    for (auto [ns, dev] : {std::pair{ns_a, veth_a}, std::pair{ns_b, veth_b}})
      must({tc_, "-n", ns, "qdisc", "del", "dev", dev, "root"});
  }

  std::vector<std::string> exec_in(const std::string& ns) const { return {"netns", "exec", ns}; }
  const std::string& ip() const { return ip_; }

  std::string ns_a, ns_b, veth_a, veth_b, addr_a, addr_b;
  bool netem = false;
  std::string netem_error;

 private:
  void must(const std::vector<std::string>& argv) {
    auto r = run_tool(argv);
    if (r.code != 0)
      throw test_failed(joined(argv) + ": exit " + std::to_string(r.code) + ": " + r.output);
  }

  std::string ip_;
  std::string tc_;
  std::vector<int> cleanup_slots_;
};

// Opens a client connection from inside network namespace `ns`.
std::unique_ptr<client> connect_in(const std::string& ns, const std::string& host, uint16_t port) {
  int target = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  REQUIRE(target >= 0 && home >= 0, "open the namespace files of " + ns);
  bool entered = ::setns(target, CLONE_NEWNET) == 0;
  auto c = entered ? client::connect(host, port)
                   : result<std::unique_ptr<client>>{status{errc::io_error, "setns failed"}};
  bool back = ::setns(home, CLONE_NEWNET) == 0;
  ::close(target);
  ::close(home);
  if (!back) {
    std::printf("FAIL: cannot return to the original network namespace\n");
    std::fflush(stdout);
    std::abort();  // the watchdog's clean-up does not run: better than traffic in the wrong place
  }
  return need(std::move(c), "connect to " + host + ":" + std::to_string(port) + " in " + ns);
}

// A node in a namespace, reached at host:port from inside it.
struct netns_node {
  std::string name;
  std::string ns;
  std::string host;
  node_process proc;

  std::unique_ptr<client> connect() const { return connect_in(ns, host, proc.resp_port()); }
  std::map<std::string, std::string> replication() const {
    auto c = connect();
    return info(*c, "replication");
  }
  std::string digest() const {
    auto c = connect();
    auto r = run(*c, {"DEBUG", "DIGEST"});
    REQUIRE(r.type == reply::kind::simple && r.text.size() == 32,
            "DEBUG DIGEST on " + name + ": " + r.to_string());
    return r.text;
  }
  int64_t dbsize() const {
    auto c = connect();
    return run(*c, {"DBSIZE"}).integer;
  }
};

// The write load: SETs of key_count keys of value_bytes, round robin,
// pipelined by batch_size, at most one batch per batch_interval.
struct load {
  std::unique_ptr<client> conn;
  uint64_t next = 0;  // the next SET's number; key = number % key_count
  uint64_t acked = 0;
  std::vector<uint64_t> last_acked = std::vector<uint64_t>(key_count, UINT64_MAX);

  static std::string key(size_t k) { return "nf:k" + std::to_string(k); }
  static std::string value(uint64_t n) {
    auto head = "n" + std::to_string(n) + ":";
    return head + std::string(value_bytes - head.size(), 'a' + static_cast<char>(n % 26));
  }

  void batch() {
    auto first = next;
    for (size_t i = 0; i < batch_size; ++i, ++next)
      conn->queue({"SET", key(next % key_count), value(next)});
    REQUIRE(conn->flush().ok(), "flush a batch");
    for (uint64_t n = first; n < next; ++n) {
      auto r = need(conn->read_reply(milliseconds(30000)), "reply to SET");
      if (!is_ok(r)) REQUIRE(false, "SET: " + r.to_string());
      last_acked[n % key_count] = n;
      ++acked;
    }
  }

  // Writes for `length` and, when given, until `min_bytes` were written or
  // `max_length` passed; calls `each` between batches.
  void run_for(milliseconds length, const std::function<void()>& each = {}, uint64_t min_bytes = 0,
               milliseconds max_length = milliseconds(0)) {
    auto started_at = steady::now();
    auto first = acked;
    auto more = [&] {
      auto now = steady::now();
      if (now < started_at + length) return true;
      return (acked - first) * value_bytes < min_bytes && now < started_at + max_length;
    };
    while (more()) {
      auto started = steady::now();
      batch();
      if (each) each();
      std::this_thread::sleep_until(started + batch_interval);
    }
  }

  // Every key holds its last acknowledged value on `node`.
  void verify(const netns_node& node) const {
    auto c = node.connect();
    size_t wrong = 0;
    std::string first;
    for (size_t k0 = 0; k0 < key_count; k0 += 500) {
      std::vector<std::string> mget{"MGET"};
      for (size_t k = k0; k < std::min(key_count, k0 + 500); ++k) mget.push_back(key(k));
      auto r = need(c->command(mget), "MGET on " + node.name);
      REQUIRE(r.type == reply::kind::array && r.elements.size() == mget.size() - 1, r.to_string());
      for (size_t i = 0; i < r.elements.size(); ++i) {
        auto n = last_acked[k0 + i];
        bool good = n == UINT64_MAX ? r.elements[i].type == reply::kind::null
                                    : r.elements[i].text == value(n);
        if (!good && wrong++ == 0) first = mget[i + 1] + " = " + r.elements[i].text.substr(0, 20);
      }
    }
    CHECK(wrong == 0, node.name + ": " + std::to_string(wrong) +
                          " keys without their last acknowledged value, first " + first);
  }
};

// The replica reaches the primary's sequence, digest and DBSIZE.
void check_converged(const netns_node& primary, const netns_node& replica, const std::string& phase,
                     milliseconds limit = milliseconds(60000)) {
  auto sequence = number(primary.replication(), "master_repl_offset");
  auto started = steady::now();
  bool reached = eventually(
      [&] { return number(replica.replication(), "applied_sequence") >= sequence; }, limit);
  auto took = std::chrono::duration_cast<milliseconds>(steady::now() - started).count();
  auto fields = replica.replication();
  REQUIRE(reached, phase + ": the replica did not reach sequence " + std::to_string(sequence) +
                       ": state " + fields["replica_state"] + ", applied " +
                       fields["applied_sequence"] + ", link " + fields["master_link_status"] +
                       ", last_error " + fields["last_error"]);
  CHECK(number(fields, "applied_sequence") == sequence,
        phase + ": applied " + fields["applied_sequence"] + " != " + std::to_string(sequence));
  auto want = primary.digest();
  CHECK(replica.digest() == want, phase + ": digest " + replica.digest() + " != primary " + want);
  CHECK(replica.dbsize() == primary.dbsize(), phase + ": DBSIZE differs");
  std::printf("%s: converged at sequence %llu in %lld ms, digest %s\n", phase.c_str(),
              static_cast<unsigned long long>(sequence), static_cast<long long>(took),
              want.c_str());
}

using ull = unsigned long long;

// The primary (namespace A) and its replica (namespace B), `--sync none`.
struct netfault_cluster {
  temp_dir dir;
  netns_node primary;
  netns_node replica;

  explicit netfault_cluster(const netns_lab& lab) {
    primary = {"primary", lab.ns_a, lab.addr_a,
               start(lab, lab.ns_a,
                     {"primary", "--dir", (dir.path / "primary").string(), "--bind", lab.addr_a,
                      "--port", "0", "--repl-port", "0", "--sync", "none"},
                     "primary.log")};
    auto upstream = lab.addr_a + ":" + std::to_string(primary.proc.repl_port());
    replica = {
        "replica", lab.ns_b, lab.addr_b,
        start(lab, lab.ns_b,
              {"replica", "--dir", (dir.path / "replica").string(), "--bind", lab.addr_b, "--port",
               "0", "--primary", upstream, "--replica-id", "replica-1", "--sync", "none"},
              "replica.log")};
  }

  node_process start(const netns_lab& lab, const std::string& ns,
                     const std::vector<std::string>& args, const std::string& log) {
    auto argv = lab.exec_in(ns);
    argv.push_back(program);
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = need(node_process::start(lab.ip(), argv, (dir.path / log).string()), "start " + log);
    register_pid(p.pid());
    return p;
  }
};

// Delay, loss, reordering: the replica keeps up while each fault is on.
void run_impairments(netns_lab& lab, netfault_cluster& c, load& writes) {
  struct impairment {
    std::string name;
    std::vector<std::string> qdisc;
  };
  std::vector<impairment> impairments = {
      {"delay 20ms jitter 5ms", {"netem", "delay", "20ms", "5ms"}},
      {"loss 5%", {"netem", "loss", "5%"}},
      {"reordering", {"netem", "delay", "10ms", "reorder", "25%", "50%"}},
  };
  for (auto& fault : impairments) {
    lab.impair(fault.qdisc);
    writes.run_for(impaired_load);
    check_converged(c.primary, c.replica, fault.name);
    lab.heal();
  }
}

// What INFO and /proc showed during a partition.
struct partition_view {
  uint64_t max_rss = 0;
  uint64_t max_lag_entries = 0;
  bool primary_saw_down = false;
  bool replica_saw_down = false;
  std::string last_slave_line;

  void sample(const netfault_cluster& c, client& primary_conn) {
    max_rss = std::max(max_rss, rss_bytes(c.primary.proc.pid()));
    last_slave_line = info(primary_conn, "replication")["slave0"];
    if (last_slave_line.find("state=down") != std::string::npos) primary_saw_down = true;
    auto at = last_slave_line.find("lag_entries=");
    if (at != std::string::npos)
      max_lag_entries = std::max<uint64_t>(
          max_lag_entries, std::strtoull(last_slave_line.c_str() + at + 12, nullptr, 10));
    if (c.replica.replication()["master_link_status"] == "down") replica_saw_down = true;
  }
};

// A full partition while the primary keeps taking writes, then the heal.
void run_partition(netns_lab& lab, netfault_cluster& c, load& writes) {
  auto baseline_rss = rss_bytes(c.primary.proc.pid());
  REQUIRE(baseline_rss > 0, "VmRSS of the primary");
  auto acked_before = writes.acked;
  partition_view seen;
  seen.max_rss = baseline_rss;
  auto next_sample = steady::now();
  lab.partition();
  auto each_batch = [&] {
    if (steady::now() < next_sample) return;
    next_sample = steady::now() + milliseconds(200);
    seen.sample(c, *writes.conn);
  };
  writes.run_for(partition_length, each_batch, partition_min_bytes, partition_max_length);
  auto written = (writes.acked - acked_before) * value_bytes;
  lab.heal();
  std::printf(
      "partition: %llu writes (%llu MiB) taken, primary RSS %llu -> max %llu MiB, max "
      "lag %llu entries, last slave0: %s\n",
      static_cast<ull>(writes.acked - acked_before), static_cast<ull>(written >> 20),
      static_cast<ull>(baseline_rss >> 20), static_cast<ull>(seen.max_rss >> 20),
      static_cast<ull>(seen.max_lag_entries), seen.last_slave_line.c_str());
  if (written <= window_bytes)
    std::printf(
        "note: this machine wrote only %llu bytes during the partition, not more than "
        "the replication window: the RSS bound was not stressed\n",
        static_cast<ull>(written));
  CHECK(seen.primary_saw_down,
        "the primary's INFO never showed the replica down: " + seen.last_slave_line);
  CHECK(seen.max_lag_entries > 0, "the primary's INFO never showed a lag");
  CHECK(seen.replica_saw_down, "the replica's INFO never showed master_link_status:down");
  CHECK(seen.max_rss <= baseline_rss + window_bytes + rss_margin_bytes,
        "primary RSS " + std::to_string(seen.max_rss) + " > baseline " +
            std::to_string(baseline_rss) + " + window + 32 MiB");
  check_converged(c.primary, c.replica, "after the partition");
}

void test_netfault(const test_args&) {
  if (::geteuid() != 0) throw test_skipped("needs root (network namespaces, tc)");
  auto ip = find_tool("ip");
  auto tc = find_tool("tc");
  if (ip.empty() || tc.empty()) throw test_skipped("needs the ip and tc tools (iproute2)");
  netns_lab lab{ip, tc};  // destroyed after the nodes below
  lab.create();
  if (!lab.netem)
    std::printf(
        "note: tc netem unavailable (%s): the delay, loss and reordering phases do not "
        "run; the partition uses a tbf that drops every frame\n",
        lab.netem_error.c_str());
  netfault_cluster c{lab};
  load writes;
  writes.conn = c.primary.connect();
  // Given: every key written once, the replica in sync.
  while (writes.next < key_count) writes.batch();
  check_converged(c.primary, c.replica, "baseline");
  if (lab.netem) run_impairments(lab, c, writes);
  run_partition(lab, c, writes);
  writes.verify(c.primary);
  writes.verify(c.replica);
  auto replica_code = c.replica.proc.stop();
  CHECK(replica_code && *replica_code == 0, "replica exit code");
  auto primary_code = c.primary.proc.stop();
  CHECK(primary_code && *primary_code == 0, "primary exit code");
}

const registration netfault_tests{{
    {"netfault", test_netfault, 200, {}},
}};

}  // namespace
