// Process chaos: a walrus-kv primary and two replicas, all `--sync always`
// (`chaos`) or all `--sync group` (`chaos_group`: the primary's writer
// stages each round's appends), under a write load from several client
// connections, while a seeded random sequence of `kill -9` + restart (same
// folder, same port for the primary) hits one process per cycle.
//
//   walrus_kv_process_tests WALRUS_KV_BINARY chaos|chaos_group [--cycles N] [--seed S]
//
// Each writer thread owns a connection and its own keys (w<id>:k<n>) and
// writes values "w<id>:k<n>:s<seq>" with a per-writer increasing seq; every
// 8th SET is followed (pipelined) by WAIT 1. It records per key the last
// seq sent, acknowledged (+OK) and confirmed by WAIT on >= 1 replica. After
// the last cycle the load stops and the test checks:
//   * every acknowledged write is on the primary with its last acknowledged
//     value or a later one sent by the same writer (`writes lost` = 0);
//   * acknowledged SETs <= the primary's sequence <= sent SETs (each SET is
//     one WAL entry: nothing acknowledged is missing, nothing is doubled);
//   * no replica is ever ahead of a restarted primary (that would mean the
//     primary lost durable writes);
//   * each replica converges: same applied sequence, DEBUG DIGEST and DBSIZE
//     as the primary, and the same per-key check passes on it.
// The seed decides which process dies, how long the load runs before and
// how long the process stays down; it is printed so a run can be replayed
// (timing still differs from run to run).
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
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

constexpr size_t writer_count = 4;
constexpr size_t keys_per_writer = 250;
constexpr uint64_t wait_every = 8;  // every 8th SET is followed by WAIT 1
constexpr int wait_timeout_ms = 300;
constexpr size_t value_padding_bytes = 100;
constexpr unsigned default_cycles = 6;

// What one writer knows about one of its keys (seq 0: none).
struct key_history {
  uint64_t last_sent = 0;
  uint64_t last_acked = 0;
  uint64_t last_confirmed = 0;  // acknowledged and confirmed by WAIT on >= 1 replica
};

// One client connection writing its own keys; its thread owns everything
// but `acked_so_far` (read by the main thread to see progress).
struct writer {
  size_t id = 0;
  std::vector<key_history> keys = std::vector<key_history>(keys_per_writer);
  uint64_t next_seq = 1;
  uint64_t sent = 0;
  uint64_t acked = 0;
  uint64_t confirmed = 0;
  uint64_t unanswered = 0;  // sent, then the connection broke: outcome unknown
  uint64_t error_replies = 0;
  uint64_t reconnects = 0;
  std::string first_error;
  std::atomic<uint64_t> acked_so_far{0};

  std::string key(size_t k) const { return "w" + std::to_string(id) + ":k" + std::to_string(k); }
  std::string value(size_t k, uint64_t seq) const {
    return key(k) + ":s" + std::to_string(seq) + ":" + std::string(value_padding_bytes, 'v');
  }

  void run(const std::atomic<bool>& stop, uint16_t port, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::unique_ptr<client> conn;
    while (!stop.load()) {
      if (!conn) {
        auto c = client::connect("127.0.0.1", port, milliseconds(1000));
        if (!c) {
          std::this_thread::sleep_for(milliseconds(20));
          continue;
        }
        conn = std::move(*c);
        ++reconnects;
      }
      if (!write_one(*conn, rng)) conn.reset();
    }
  }

  // One SET (and maybe WAIT 1); false when the connection broke.
  bool write_one(client& conn, std::mt19937_64& rng) {
    auto k = static_cast<size_t>(rng() % keys_per_writer);
    auto seq = next_seq++;
    bool wait = seq % wait_every == 0;
    conn.queue({"SET", key(k), value(k, seq)});
    if (wait) conn.queue({"WAIT", "1", std::to_string(wait_timeout_ms)});
    keys[k].last_sent = seq;
    ++sent;
    if (!conn.flush(milliseconds(5000)).ok()) return ++unanswered, false;
    auto r = conn.read_reply(milliseconds(10000));
    if (!r) return ++unanswered, false;
    if (!is_ok(*r)) {
      if (error_replies++ == 0) first_error = r->to_string();
      if (!wait) return true;
    } else {
      keys[k].last_acked = seq;
      ++acked;
      acked_so_far.store(acked);
    }
    if (wait) {
      auto w = conn.read_reply(milliseconds(10000));
      if (!w) return false;
      if (is_ok(*r) && w->type == reply::kind::integer && w->integer >= 1) {
        keys[k].last_confirmed = seq;
        ++confirmed;
      }
    }
    return true;
  }
};

// Keys whose acknowledged value is missing or older on the node at `port`;
// prints the first few.
uint64_t count_lost(uint16_t port, const std::vector<std::unique_ptr<writer>>& writers,
                    const std::string& node) {
  auto c = connect(port);
  uint64_t lost = 0;
  uint64_t printed = 0;
  auto report = [&](const std::string& what) {
    ++lost;
    if (printed++ < 5) std::printf("  %s: %s\n", node.c_str(), what.c_str());
  };
  for (auto& w : writers) {
    std::vector<std::string> mget{"MGET"};
    for (size_t k = 0; k < keys_per_writer; ++k) mget.push_back(w->key(k));
    auto r = need(c->command(mget), "MGET on " + node);
    REQUIRE(r.type == reply::kind::array && r.elements.size() == keys_per_writer, r.to_string());
    for (size_t k = 0; k < keys_per_writer; ++k) {
      auto& h = w->keys[k];
      auto& got = r.elements[k];
      auto prefix = w->key(k) + ":s";
      if (got.type != reply::kind::bulk) {
        if (h.last_acked != 0)
          report(w->key(k) + " missing, acknowledged seq " + std::to_string(h.last_acked));
        continue;
      }
      uint64_t seq = 0;
      if (got.text.rfind(prefix, 0) == 0)
        seq = std::strtoull(got.text.c_str() + prefix.size(), nullptr, 10);
      if (seq == 0 || seq > h.last_sent) {
        report(w->key(k) + " holds a value never sent: " + got.text.substr(0, 40));
      } else if (seq < h.last_acked) {
        report(w->key(k) + " holds seq " + std::to_string(seq) + ", acknowledged seq " +
               std::to_string(h.last_acked) +
               (h.last_confirmed == h.last_acked ? " (confirmed by WAIT)" : ""));
      }
    }
  }
  return lost;
}

std::string replication_line(uint16_t port) {
  auto fields = info(port, "replication");
  std::string out;
  for (auto name :
       {"role", "master_repl_offset", "master_link_status", "replica_state", "applied_sequence",
        "durable_sequence", "master_sequence", "last_error", "slave0", "slave1"})
    if (fields.count(name)) out += std::string(" ") + name + "=" + fields[name];
  return out;
}

using ull = unsigned long long;

// One chaos run: the cluster, the writer threads and what the cycles saw.
class chaos_run {
 public:
  chaos_run(seeded_rounds options, const char* sync)
      : sync_{"--sync", sync, "--snapshot-entries", "3000", "--wal-segment-bytes", "65536"},
        options_(options),
        rng_(options.seed) {}

  ~chaos_run() { stop_load(); }

  void start() {
    c_.start_primary(sync_);
    c_.start_replica(1, sync_);
    c_.start_replica(2, sync_);
    port_ = c_.primary.resp_port();
    for (size_t i = 0; i < writer_count; ++i) {
      writers_.push_back(std::make_unique<writer>());
      writers_.back()->id = i;
    }
    for (size_t i = 0; i < writer_count; ++i)
      threads_.emplace_back(
          [this, i] { writers_[i]->run(stop_, port_, options_.seed * 1000 + i + 1); });
  }

  // Load, kill -9 one process, keep it down, restart it, see the load resume.
  void cycle(unsigned n) {
    auto load_ms = uniform(200, 1200);
    auto target = static_cast<size_t>(uniform(0, 2));
    auto down_ms = uniform(0, 600);
    std::this_thread::sleep_for(milliseconds(load_ms));
    node_process& victim = target == 0 ? c_.primary : c_.replicas[target - 1];
    std::printf(
        "cycle %u: after %llu ms of load (%llu writes acknowledged), kill -9 %s (pid %d), "
        "down %llu ms\n",
        n, static_cast<ull>(load_ms), static_cast<ull>(total_acked()), role_names[target],
        victim.pid(), static_cast<ull>(down_ms));
    victim.signal(SIGKILL);
    REQUIRE(victim.wait(milliseconds(10000)).ok(), std::string(role_names[target]) + " died");
    ++kills_[target];
    if (target == 0) {
      auto received = replicas_received();
      std::this_thread::sleep_for(milliseconds(down_ms));
      c_.start_primary(sync_);
      check_not_ahead(n, received);
    } else {
      std::this_thread::sleep_for(milliseconds(down_ms));
      c_.start_replica(target, sync_);
    }
    auto before = total_acked();
    REQUIRE(eventually([&] { return total_acked() > before; }, milliseconds(30000)),
            "cycle " + std::to_string(n) + ": no write acknowledged after restarting " +
                role_names[target] + ";" + replication_line(port_));
  }

  void stop_load() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  // After stop_load(): nothing acknowledged lost; the replicas converge.
  void verify() {
    uint64_t sent = 0, acked = 0, confirmed = 0, unanswered = 0;
    for (auto& w : writers_) {
      sent += w->sent;
      acked += w->acked;
      confirmed += w->confirmed;
      unanswered += w->unanswered;
      CHECK(w->error_replies == 0, "writer " + std::to_string(w->id) + ": " +
                                       std::to_string(w->error_replies) +
                                       " error replies, first: " + w->first_error);
    }
    auto lost = count_lost(port_, writers_, "primary");
    CHECK(lost == 0, std::to_string(lost) + " acknowledged keys lost or stale on the primary");
    // One WAL entry per SET that reached the primary, none twice.
    auto sequence = c_.primary_sequence();
    CHECK(sequence >= acked && sequence <= sent,
          "primary sequence " + std::to_string(sequence) + " outside [acknowledged " +
              std::to_string(acked) + ", sent " + std::to_string(sent) + "]");
    auto digest = digest_of(port_);
    for (size_t r = 0; r < 2; ++r) lost += check_replica(r, sequence, digest);
    std::printf(
        "chaos: seed %llu, cycles %u, writes acked %llu (confirmed by WAIT %llu, "
        "unanswered %llu, sent %llu), writes lost %llu (must be 0), replicas ahead %llu "
        "(must be 0), kills: primary %u, replica-1 %u, replica-2 %u; sequence %llu, "
        "digest %s\n",
        static_cast<ull>(options_.seed), options_.rounds, static_cast<ull>(acked),
        static_cast<ull>(confirmed), static_cast<ull>(unanswered), static_cast<ull>(sent),
        static_cast<ull>(lost), static_cast<ull>(ahead_), kills_[0], kills_[1], kills_[2],
        static_cast<ull>(sequence), digest.c_str());
    for (auto& r : c_.replicas) CHECK(r.stop().ok(), "replica stop");
    auto code = c_.primary.stop();
    CHECK(code && *code == 0, "primary exit code");
  }

 private:
  static constexpr const char* role_names[] = {"primary", "replica-1", "replica-2"};

  uint64_t uniform(uint64_t lo, uint64_t hi) { return lo + rng_() % (hi - lo + 1); }

  uint64_t total_acked() const {
    uint64_t n = 0;
    for (auto& w : writers_) n += w->acked_so_far.load();
    return n;
  }

  // With the primary dead: what each replica received from it, entries that
  // were durable there, so the restarted primary must hold them all.
  std::array<uint64_t, 2> replicas_received() {
    std::array<uint64_t, 2> received{};
    for (size_t r = 0; r < 2; ++r) {
      auto fields = info(c_.replicas[r].resp_port(), "replication");
      received[r] =
          std::max(number(fields, "received_sequence"), number(fields, "applied_sequence"));
    }
    return received;
  }

  void check_not_ahead(unsigned cycle, const std::array<uint64_t, 2>& received) {
    auto restarted_at = c_.primary_sequence();
    for (size_t r = 0; r < 2; ++r) {
      if (received[r] > restarted_at) ++ahead_;
      CHECK(received[r] <= restarted_at,
            "cycle " + std::to_string(cycle) + ": replica-" + std::to_string(r + 1) + " received " +
                std::to_string(received[r]) + " > restarted primary's sequence " +
                std::to_string(restarted_at) + " (seed " + std::to_string(options_.seed) + ")");
    }
  }

  // Replica r reaches `sequence`, then holds what the primary holds; the
  // number of acknowledged keys wrong on it.
  uint64_t check_replica(size_t r, uint64_t sequence, const std::string& digest) {
    auto name = "replica-" + std::to_string(r + 1);
    auto rport = c_.replicas[r].resp_port();
    bool converged = eventually(
        [&] { return info_number(rport, "replication", "applied_sequence") >= sequence; },
        milliseconds(60000));
    CHECK(converged, name + " did not reach sequence " + std::to_string(sequence) + ":" +
                         replication_line(rport) + "; primary:" + replication_line(port_));
    if (!converged) return 0;
    auto applied = info_number(rport, "replication", "applied_sequence");
    CHECK(applied == sequence, name + " applied " + std::to_string(applied) +
                                   ", primary sequence " + std::to_string(sequence));
    auto replica_digest = digest_of(rport);
    CHECK(replica_digest == digest, name + " digest " + replica_digest + " != primary " + digest);
    CHECK(dbsize_of(rport) == dbsize_of(port_), name + " DBSIZE differs");
    auto lost = count_lost(rport, writers_, name);
    CHECK(lost == 0, std::to_string(lost) + " acknowledged keys wrong on " + name);
    return lost;
  }

  // Small WAL segments and frequent snapshots: kills also land during
  // snapshots, WAL trimming and replicas bootstrapping from a snapshot.
  const std::vector<std::string> sync_;
  seeded_rounds options_;
  std::mt19937_64 rng_;
  cluster c_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<writer>> writers_;
  std::vector<std::thread> threads_;
  unsigned kills_[3] = {0, 0, 0};
  uint64_t ahead_ = 0;
};

void run_chaos(const test_args& args, const char* test, const char* sync) {
  auto options = parse_seeded_rounds(args, test, "cycles", default_cycles);
  arm_watchdog(120 + options.rounds * 20);
  chaos_run run{options, sync};
  run.start();
  for (unsigned n = 1; n <= options.rounds; ++n) run.cycle(n);
  run.stop_load();
  run.verify();
}

const registration chaos_tests{{
    {"chaos", [](const test_args& args) { run_chaos(args, "chaos", "always"); },
     120 + default_cycles * 20, "[--cycles N] [--seed S]"},
    {"chaos_group", [](const test_args& args) { run_chaos(args, "chaos_group", "group"); },
     120 + default_cycles * 20, "[--cycles N] [--seed S]"},
}};

}  // namespace
