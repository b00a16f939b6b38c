// Replication over real TCP between walrus-kv processes (issue 4): a primary
// and replicas as child processes on loopback, ports picked by the OS.
//
//   walrus_kv_process_tests WALRUS_KV_BINARY stream_million
//   walrus_kv_process_tests WALRUS_KV_BINARY tcp_drops [--cuts N] [--seed S]
//   walrus_kv_process_tests WALRUS_KV_BINARY stall_memory
//
// * stream_million: 1 000 000 entries (MSET batches, one WAL entry per key)
//   reach two replicas, which end with the primary's sequence, DEBUG DIGEST,
//   DBSIZE and a sample of keys. Prints the elapsed time and the rate.
// * tcp_drops: a proxy thread in this process sits between the replica and
//   the primary's replication port and cuts every connection (FIN or RST,
//   alternately) at seeded random moments while one client INCRs counters
//   and another overwrites keys with MSETs of 100 entries (so that cuts land
//   inside large batches) on a `--sync always` primary. After each cut the
//   proxy holds new connections in its listen backlog until both nodes' INFO
//   show the link down, so every reconnect is observed, not raced. Then:
//   every INCR reply was the count of acknowledged INCRs of its counter, the
//   primary's sequence equals the acknowledged entries, and the replica has
//   the same sequence, WAL records, counters and digest: nothing
//   acknowledged lost, nothing applied twice. The replica's INFO counts at
//   least one master_link_reconnects per cut, and the proxy counts the
//   connections it accepted.
// * stall_memory: the replica is SIGSTOPped while a client overwrites a fixed
//   key set at full speed for 10 s (the store does not grow); the primary's
//   VmRSS may grow by at most the replication window (8 MiB) + 32 MiB over
//   its warmed-up baseline; after SIGCONT the replica catches up.
// Outcomes do not depend on timing; durations are printed, never asserted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "apps/kv/client.hpp"
#include "apps/kv/server_process.hpp"
#include "tests/process/harness.hpp"

namespace {

using namespace walrus;
using namespace walrus::kv;
using namespace walrus::kv::process_tests;
using ull = unsigned long long;

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

// `name` reaches the primary's sequence, then has its digest and DBSIZE.
void check_converged(cluster& c, uint16_t replica_port, const std::string& name,
                     milliseconds limit = milliseconds(60000)) {
  auto sequence = c.primary_sequence();
  auto started = steady::now();
  bool reached = eventually(
      [&] { return info_number(replica_port, "replication", "applied_sequence") >= sequence; },
      limit);
  auto fields = info(replica_port, "replication");
  REQUIRE(reached, name + " did not reach sequence " + std::to_string(sequence) + ": state " +
                       fields["replica_state"] + ", applied " + fields["applied_sequence"] +
                       ", link " + fields["master_link_status"]);
  CHECK(number(fields, "applied_sequence") == sequence,
        name + " applied " + fields["applied_sequence"] + " != " + std::to_string(sequence));
  auto want = digest_of(c.primary.resp_port());
  auto got = digest_of(replica_port);
  CHECK(got == want, name + " digest " + got + " != primary " + want);
  CHECK(dbsize_of(replica_port) == dbsize_of(c.primary.resp_port()), name + " DBSIZE differs");
  std::printf("%s: converged at sequence %llu (%.2f s after the check began), digest %s\n",
              name.c_str(), static_cast<ull>(sequence), seconds_since(started), want.c_str());
}

// -- stream_million ---------------------------------------------------------------

constexpr uint64_t million = 1000000;
constexpr size_t mset_pairs = 100;      // entries per MSET (one WAL entry per key)
constexpr size_t msets_in_flight = 50;  // pipelined per round trip
constexpr uint64_t sample_every = 997;  // keys checked on every node: 1 in 997

std::string million_key(uint64_t i) {
  return "m:" + std::to_string(i);
}
std::string million_value(uint64_t i) {
  return "v" + std::to_string(i * 7 + 3);
}

// Keys [0, count) in pipelined MSETs; the number of keys acknowledged.
uint64_t write_msets(client& conn, uint64_t count) {
  uint64_t acked = 0;
  for (uint64_t next = 0; next < count;) {
    size_t queued = 0;
    for (; queued < msets_in_flight && next < count; ++queued) {
      std::vector<std::string> args{"MSET"};
      auto end = std::min(count, next + mset_pairs);
      for (; next < end; ++next) {
        args.push_back(million_key(next));
        args.push_back(million_value(next));
      }
      conn.queue(args);
    }
    REQUIRE(conn.flush(milliseconds(30000)).ok(), "flush MSETs");
    for (size_t i = 0; i < queued; ++i) {
      auto r = need(conn.read_reply(milliseconds(30000)), "reply to MSET");
      REQUIRE(is_ok(r), "MSET: " + r.to_string());
      acked += std::min<uint64_t>(mset_pairs, count - acked);
    }
  }
  return acked;
}

// Every sample_every-th key holds its value on the node at `port`.
void check_sample(uint16_t port, const std::string& node) {
  auto c = connect(port);
  std::vector<std::string> mget{"MGET"};
  for (uint64_t i = 0; i < million; i += sample_every) mget.push_back(million_key(i));
  auto r = need(c->command(mget, milliseconds(30000)), "MGET on " + node);
  REQUIRE(r.type == reply::kind::array && r.elements.size() == mget.size() - 1, r.to_string());
  size_t wrong = 0;
  std::string first;
  for (size_t k = 0; k < r.elements.size(); ++k) {
    auto want = million_value(k * sample_every);
    if (r.elements[k].text != want && wrong++ == 0)
      first = mget[k + 1] + " = " + r.elements[k].to_string() + ", want " + want;
  }
  CHECK(wrong == 0, node + ": " + std::to_string(wrong) + " of " +
                        std::to_string(r.elements.size()) + " sampled keys wrong, first " + first);
}

void test_stream_million() {
  cluster c;
  c.start_primary();
  c.start_replica(1);
  c.start_replica(2);
  auto w = connect(c.primary.resp_port());
  auto started = steady::now();
  auto acked = write_msets(*w, million);
  auto write_s = seconds_since(started);
  REQUIRE(acked == million, "acknowledged " + std::to_string(acked));
  auto sequence = c.primary_sequence();
  CHECK(sequence == million, "primary sequence " + std::to_string(sequence));
  for (size_t i = 0; i < 2; ++i)
    REQUIRE(c.caught_up(c.replicas[i], sequence, milliseconds(90000)),
            "replica-" + std::to_string(i + 1) + " did not reach " + std::to_string(sequence));
  auto total_s = seconds_since(started);
  std::printf(
      "stream_million: %llu entries written in %.2f s (%.0f entries/s); both replicas applied "
      "all after %.2f s (%.0f entries/s end to end)\n",
      static_cast<ull>(million), write_s, million / write_s, total_s, million / total_s);
  CHECK(dbsize_of(c.primary.resp_port()) == static_cast<int64_t>(million), "primary DBSIZE");
  check_sample(c.primary.resp_port(), "primary");
  for (size_t i = 0; i < 2; ++i) {
    auto name = "replica-" + std::to_string(i + 1);
    check_converged(c, c.replicas[i].resp_port(), name);
    check_sample(c.replicas[i].resp_port(), name);
  }
  for (auto& r : c.replicas) CHECK(r.stop().ok(), "replica stop");
  auto code = c.primary.stop();
  CHECK(code && *code == 0, "primary exit code");
}

// -- a write load that does not grow the store -------------------------------------

constexpr size_t overwrite_keys = 20000;
constexpr size_t overwrite_value_bytes = 100;

// Overwrites overwrite_keys keys (values of overwrite_value_bytes) in pipelined
// MSETs from its own thread until stopped: the store does not grow.
struct overwrite_load {
  std::atomic<uint64_t> entries{0};
  std::atomic<bool> failed{false};
  std::string failure;  // read once `failed` is set

  void run(const std::atomic<bool>& stop, uint16_t port) {
    auto conn = client::connect("127.0.0.1", port);
    if (!conn) return fail("connect: " + conn.error().to_string());
    uint64_t next = 0;
    while (!stop.load()) {
      for (size_t m = 0; m < 10; ++m) {
        std::vector<std::string> args{"MSET"};
        for (size_t i = 0; i < mset_pairs; ++i, ++next) {
          auto v = std::to_string(next) + ":";
          args.push_back("s:" + std::to_string(next % overwrite_keys));
          args.push_back(v + std::string(overwrite_value_bytes - v.size(), 'x'));
        }
        (*conn)->queue(args);
      }
      if (!(*conn)->flush().ok()) return fail("flush failed");
      for (size_t m = 0; m < 10; ++m) {
        auto r = (*conn)->read_reply(milliseconds(30000));
        if (!r || !is_ok(*r)) return fail("MSET: " + (r ? r->to_string() : r.error().to_string()));
      }
      entries += 10 * mset_pairs;
    }
  }

  void fail(std::string what) {
    failure = std::move(what);
    failed = true;
  }
};

// -- tcp_drops: the proxy ---------------------------------------------------------

// A TCP proxy on 127.0.0.1:0 forwarding to 127.0.0.1:upstream, run by one
// thread with poll(). Any EOF or error on either side of a forwarded
// connection closes both sides (the replication protocol does not half-close).
// Each direction buffers at most max_buffered_bytes; past it, reading stops.
class cutting_proxy {
 public:
  static constexpr size_t max_buffered_bytes = 1 << 20;

  explicit cutting_proxy(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto addr = loopback_address(0);
    socklen_t len = sizeof(addr);
    REQUIRE(listen_fd_ >= 0 &&
                ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                ::listen(listen_fd_, 16) == 0 &&
                ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
            "proxy listen socket");
    port_ = ntohs(addr.sin_port);
    REQUIRE(::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) == 0, "proxy wake pipe");
    thread_ = std::thread([this] { loop(); });
  }

  ~cutting_proxy() {
    stop_ = true;
    wake();
    thread_.join();
    for (auto& l : links_) close_link(l, false);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  cutting_proxy(const cutting_proxy&) = delete;
  cutting_proxy& operator=(const cutting_proxy&) = delete;

  uint16_t port() const { return port_; }
  uint64_t accepted() const { return accepted_.load(); }

  // While held, new connections wait in the listen backlog, unanswered.
  void hold(bool on) {
    held_ = on;
    wake();
  }

  // Closes every forwarded connection, both sides (with RST when `reset`);
  // returns how many it closed.
  size_t cut(bool reset) {
    reset_ = reset;
    auto ticket = ++cut_requests_;
    wake();
    REQUIRE(eventually([&] { return cuts_done_.load() >= ticket; }, milliseconds(5000)),
            "the proxy did not cut");
    return last_cut_links_.load();
  }

 private:
  struct link {
    int down = -1;  // the replica's side
    int up = -1;    // the primary's side
    std::string to_up, to_down;
  };

  void wake() {
    char b = 1;
    auto ignored = ::write(wake_[1], &b, 1);
    (void)ignored;
  }

  static void close_link(link& l, bool reset) {
    for (int fd : {l.down, l.up}) {
      if (fd < 0) continue;
      if (reset)
        close_with_reset(fd);
      else
        ::close(fd);
    }
    l.down = l.up = -1;
  }

  void accept_one() {
    int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (down < 0) return;
    ++accepted_;
    int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto addr = loopback_address(upstream_);
    if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      if (up >= 0) ::close(up);
      ::close(down);
      return;
    }
    ::fcntl(up, F_SETFL, ::fcntl(up, F_GETFL) | O_NONBLOCK);
    links_.push_back(link{down, up, {}, {}});
  }

  // Moves bytes from `from` into `buffer` and from `buffer` to `to`; false
  // on EOF or an error.
  static bool pump(int from, short from_events, std::string& buffer, int to, short to_events) {
    if ((from_events & (POLLIN | POLLHUP | POLLERR)) && buffer.size() < max_buffered_bytes) {
      char chunk[65536];
      auto n = ::read(from, chunk, sizeof(chunk));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      if (n > 0) buffer.append(chunk, static_cast<size_t>(n));
    }
    if ((to_events & (POLLERR | POLLNVAL)) != 0) return false;
    if (!buffer.empty()) {
      auto n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      if (n > 0) buffer.erase(0, static_cast<size_t>(n));
    }
    return true;
  }

  static short wanted(const std::string& in, const std::string& out) {
    short ev = 0;
    if (in.size() < max_buffered_bytes) ev |= POLLIN;
    if (!out.empty()) ev |= POLLOUT;
    return ev;
  }

  void loop() {
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      fds.push_back({held_ ? -1 : listen_fd_, POLLIN, 0});
      for (auto& l : links_) {
        fds.push_back({l.down, wanted(l.to_up, l.to_down), 0});
        fds.push_back({l.up, wanted(l.to_down, l.to_up), 0});
      }
      if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) return;
      char drain[64];
      while (::read(wake_[0], drain, sizeof(drain)) > 0) {
      }
      if (cuts_done_.load() < cut_requests_.load()) {
        last_cut_links_ = links_.size();
        for (auto& l : links_) close_link(l, reset_.load());
        links_.clear();
        cuts_done_ = cut_requests_.load();
        continue;
      }
      for (size_t i = 0; i < links_.size(); ++i) {
        auto& l = links_[i];
        auto down_ev = fds[2 + 2 * i].revents;
        auto up_ev = fds[3 + 2 * i].revents;
        if (!pump(l.down, down_ev, l.to_up, l.up, up_ev) ||
            !pump(l.up, up_ev, l.to_down, l.down, down_ev))
          close_link(l, false);
      }
      links_.erase(
          std::remove_if(links_.begin(), links_.end(), [](const link& l) { return l.down < 0; }),
          links_.end());
      if (!held_ && (fds[1].revents & POLLIN)) accept_one();
    }
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::vector<link> links_;  // the proxy thread's
  std::atomic<bool> stop_{false};
  std::atomic<bool> held_{false};
  std::atomic<bool> reset_{false};
  std::atomic<uint64_t> cut_requests_{0};
  std::atomic<uint64_t> cuts_done_{0};
  std::atomic<size_t> last_cut_links_{0};
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

// -- tcp_drops: the load ----------------------------------------------------------

constexpr size_t counter_count = 64;
constexpr size_t incrs_in_flight = 16;
constexpr unsigned default_cuts = 24;

// One connection INCRing counters round robin from its own thread. A single
// writer: each INCR reply must be the number of INCRs of that counter
// acknowledged so far, or the primary lost or doubled one.
struct counter_load {
  std::vector<uint64_t> acked = std::vector<uint64_t>(counter_count, 0);
  uint64_t sent = 0;
  uint64_t acked_total = 0;
  uint64_t wrong_replies = 0;
  std::string first_wrong;
  std::atomic<uint64_t> progress{0};

  static std::string key(size_t k) { return "ctr:" + std::to_string(k); }

  void run(const std::atomic<bool>& stop, uint16_t port) {
    auto conn = client::connect("127.0.0.1", port);
    if (!conn) return note("connect: " + conn.error().to_string());
    while (!stop.load()) {
      auto first = sent;
      for (size_t i = 0; i < incrs_in_flight; ++i, ++sent)
        (*conn)->queue({"INCR", key(sent % counter_count)});
      if (!(*conn)->flush().ok()) return note("flush failed");
      for (auto n = first; n < sent; ++n) {
        auto r = (*conn)->read_reply(milliseconds(30000));
        if (!r) return note("no reply: " + r.error().to_string());
        auto k = n % counter_count;
        if (r->type != reply::kind::integer || static_cast<uint64_t>(r->integer) != acked[k] + 1)
          note(key(k) + ": " + r->to_string() + ", expected " + std::to_string(acked[k] + 1));
        if (r->type == reply::kind::integer) {
          ++acked[k];
          ++acked_total;
        }
      }
      progress = acked_total;
    }
  }

  void note(const std::string& what) {
    if (wrong_replies++ == 0) first_wrong = what;
  }
};

// The counters on the node at `port` equal what the load had acknowledged.
void check_counters(uint16_t port, const counter_load& load, const std::string& node) {
  auto c = connect(port);
  std::vector<std::string> mget{"MGET"};
  for (size_t k = 0; k < counter_count; ++k) mget.push_back(counter_load::key(k));
  auto r = need(c->command(mget), "MGET on " + node);
  REQUIRE(r.type == reply::kind::array && r.elements.size() == counter_count, r.to_string());
  size_t wrong = 0;
  std::string first;
  for (size_t k = 0; k < counter_count; ++k) {
    auto want = std::to_string(load.acked[k]);
    if (r.elements[k].text != want && wrong++ == 0)
      first = mget[k + 1] + " = " + r.elements[k].to_string() + ", acknowledged " + want;
  }
  CHECK(wrong == 0, node + ": " + std::to_string(wrong) + " counters differ, first " + first);
}

// -- tcp_drops: the test ----------------------------------------------------------

bool link_is(uint16_t replica_port, const std::string& status) {
  return info(replica_port, "replication")["master_link_status"] == status;
}

bool primary_sees(uint16_t primary_port, const std::string& state) {
  return info(primary_port, "replication")["slave0"].find("state=" + state) != std::string::npos;
}

// One cut: after a random time of streaming, close the link, see both nodes
// report it down (the proxy holds the redial), release, see it up again.
void cut_once(cutting_proxy& proxy, cluster& c, uint16_t replica_port, std::mt19937_64& rng,
              unsigned n) {
  std::this_thread::sleep_for(milliseconds(20 + rng() % 400));
  proxy.hold(true);
  auto closed = proxy.cut(n % 2 == 0);
  CHECK(closed >= 1, "cut " + std::to_string(n) + " found no connection to close");
  CHECK(eventually([&] { return link_is(replica_port, "down"); }, milliseconds(15000)),
        "cut " + std::to_string(n) + ": the replica's INFO never showed master_link_status:down");
  CHECK(
      eventually([&] { return primary_sees(c.primary.resp_port(), "down"); }, milliseconds(15000)),
      "cut " + std::to_string(n) + ": the primary's INFO never showed the replica down: " +
          info(c.primary.resp_port(), "replication")["slave0"]);
  auto accepted = proxy.accepted();
  proxy.hold(false);
  CHECK(eventually([&] { return proxy.accepted() > accepted && link_is(replica_port, "up"); },
                   milliseconds(30000)),
        "cut " + std::to_string(n) + ": the replica did not reconnect");
}

void test_tcp_drops(const test_args& args) {
  auto options = parse_seeded_rounds(args, "tcp_drops", "cuts", default_cuts);
  arm_watchdog(100 + options.rounds * 3);
  std::mt19937_64 rng(options.seed);
  cluster c;
  c.start_primary({"--sync", "always"});
  cutting_proxy proxy{c.primary.repl_port()};
  auto replica = c.start(
      {"replica", "--dir", (c.dir.path / "replica-1").string(), "--primary",
       "127.0.0.1:" + std::to_string(proxy.port()), "--port", "0", "--replica-id", "replica-1"},
      "replica-1.log");
  auto rport = replica.resp_port();
  REQUIRE(eventually([&] { return link_is(rport, "up"); }), "the replica never connected");
  // INCRs to check, and MSETs of 100 keys (one fdatasync each) so that
  // cuts also land in the middle of large batches.
  counter_load load;
  overwrite_load bulk;
  std::atomic<bool> stop{false};
  std::thread writer{[&] { load.run(stop, c.primary.resp_port()); }};
  std::thread bulk_writer{[&] { bulk.run(stop, c.primary.resp_port()); }};
  auto started = steady::now();
  try {
    for (unsigned n = 1; n <= options.rounds; ++n) cut_once(proxy, c, rport, rng, n);
  } catch (...) {
    stop = true;
    writer.join();
    bulk_writer.join();
    throw;
  }
  auto more = load.progress.load();
  CHECK(eventually([&] { return load.progress.load() > more; }), "writes stalled at the end");
  stop = true;
  writer.join();
  bulk_writer.join();
  REQUIRE(!bulk.failed.load(), bulk.failure);
  auto sequence = c.primary_sequence();
  auto reconnects = info_number(rport, "replication", "master_link_reconnects");
  std::printf(
      "tcp_drops: %u cuts in %.1f s, %llu connections accepted by the proxy, %llu reconnects "
      "counted by the replica, %llu INCRs and %llu MSET entries acknowledged, primary sequence "
      "%llu\n",
      options.rounds, seconds_since(started), static_cast<ull>(proxy.accepted()),
      static_cast<ull>(reconnects), static_cast<ull>(load.acked_total),
      static_cast<ull>(bulk.entries.load()), static_cast<ull>(sequence));
  CHECK(load.wrong_replies == 0, std::to_string(load.wrong_replies) +
                                     " INCR replies wrong or missing, first: " + load.first_wrong);
  CHECK(load.acked_total == load.sent,
        "sent " + std::to_string(load.sent) + ", acknowledged " + std::to_string(load.acked_total));
  CHECK(sequence == load.acked_total + bulk.entries.load(),
        "primary sequence " + std::to_string(sequence) + " != acknowledged entries " +
            std::to_string(load.acked_total) + " + " + std::to_string(bulk.entries.load()));
  CHECK(proxy.accepted() >= options.rounds + 1, "too few reconnects");
  // The replica counted each reconnect too (more if the link also broke by itself).
  CHECK(reconnects >= options.rounds, "master_link_reconnects " + std::to_string(reconnects) +
                                          " < " + std::to_string(options.rounds) + " cuts");
  check_converged(c, rport, "replica-1");
  check_counters(c.primary.resp_port(), load, "primary");
  check_counters(rport, load, "replica-1");
  // Nothing appended twice on the replica: its WAL holds what the primary's does.
  auto primary_wal = info(c.primary.resp_port(), "persistence");
  auto replica_wal = info(rport, "persistence");
  CHECK(replica_wal["wal_last_sequence"] == primary_wal["wal_last_sequence"] &&
            replica_wal["wal_records"] == primary_wal["wal_records"],
        "WAL records: replica " + replica_wal["wal_records"] + " up to " +
            replica_wal["wal_last_sequence"] + ", primary " + primary_wal["wal_records"] +
            " up to " + primary_wal["wal_last_sequence"]);
  CHECK(replica.stop().ok(), "replica stop");
  auto code = c.primary.stop();
  CHECK(code && *code == 0, "primary exit code");
}

// -- stall_memory -----------------------------------------------------------------

constexpr uint64_t window_bytes = 8ull << 20;  // the replication window's default
constexpr uint64_t rss_margin_bytes = 32ull << 20;
constexpr milliseconds warm_up_length{3000};
constexpr milliseconds stall_length{10000};

// Runs the load for `length`, sampling the primary's RSS: the peak.
uint64_t load_for(overwrite_load& load, uint16_t port, pid_t primary, milliseconds length) {
  std::atomic<bool> stop{false};
  std::thread writer{[&] { load.run(stop, port); }};
  uint64_t peak = 0;
  auto end = steady::now() + length;
  while (steady::now() < end && !load.failed.load()) {
    peak = std::max(peak, rss_bytes(primary));
    std::this_thread::sleep_for(milliseconds(50));
  }
  stop = true;
  writer.join();
  REQUIRE(load.failure.empty(), load.failure);
  return std::max(peak, rss_bytes(primary));
}

// A stopped process gets SIGCONT however the test ends (a SIGKILL from the
// harness would end it anyway; this keeps a failed test's replica usable).
struct continue_on_exit {
  node_process& process;
  ~continue_on_exit() { process.signal(SIGCONT); }
};

void test_stall_memory() {
  cluster c;
  c.start_primary();
  auto& replica = c.start_replica(1);
  auto port = c.primary.resp_port();
  auto pid = c.primary.pid();
  overwrite_load load;
  // Given: every key written, the primary warmed up with the replica attached.
  auto start_rss = rss_bytes(pid);
  auto warm_peak = load_for(load, port, pid, warm_up_length);
  check_converged(c, replica.resp_port(), "before the stall");
  auto keys = dbsize_of(port);
  CHECK(keys == static_cast<int64_t>(overwrite_keys), "DBSIZE " + std::to_string(keys));
  auto baseline = rss_bytes(pid);
  REQUIRE(baseline > 0, "VmRSS of the primary");
  // When: the replica is stopped while the primary takes writes at full speed.
  auto before = load.entries.load();
  uint64_t peak = 0;
  {
    continue_on_exit resume{replica};
    replica.signal(SIGSTOP);
    peak = load_for(load, port, pid, stall_length);
    auto slave = info(port, "replication")["slave0"];
    std::printf("stall: primary's view of the stopped replica: %s\n", slave.c_str());
  }
  auto written = (load.entries.load() - before) * overwrite_value_bytes;
  std::printf(
      "stall_memory: warm-up RSS %.1f -> peak %.1f MiB; during the %lld s stall %llu entries "
      "(%.0f MiB of values, %.1f windows) written, RSS %.1f -> peak %.1f MiB (+%.1f MiB, "
      "bound +%llu MiB); DBSIZE %lld before and %lld after\n",
      start_rss / 1048576.0, warm_peak / 1048576.0,
      static_cast<long long>(stall_length.count() / 1000),
      static_cast<ull>(load.entries.load() - before), written / 1048576.0,
      static_cast<double>(written) / window_bytes, baseline / 1048576.0, peak / 1048576.0,
      (static_cast<double>(peak) - static_cast<double>(baseline)) / 1048576.0,
      static_cast<ull>((window_bytes + rss_margin_bytes) >> 20), static_cast<long long>(keys),
      static_cast<long long>(dbsize_of(port)));
  if (written <= 2 * window_bytes)
    std::printf("note: only %llu bytes written during the stall: the bound was not stressed\n",
                static_cast<ull>(written));
  CHECK(dbsize_of(port) == keys, "the store grew during the stall");
  CHECK(peak <= baseline + window_bytes + rss_margin_bytes,
        "primary RSS peak " + std::to_string(peak) + " > baseline " + std::to_string(baseline) +
            " + window + 32 MiB");
  // Then: after SIGCONT the replica catches up.
  check_converged(c, replica.resp_port(), "after SIGCONT");
  CHECK(replica.stop().ok(), "replica stop");
  auto code = c.primary.stop();
  CHECK(code && *code == 0, "primary exit code");
}

const registration network_process_tests{{
    {"stream_million", [](const test_args&) { test_stream_million(); }, 150, {}},
    {"tcp_drops", test_tcp_drops, 100 + default_cuts * 3, "[--cuts N] [--seed S]"},
    {"stall_memory", [](const test_args&) { test_stall_memory(); }, 150, {}},
}};

}  // namespace
