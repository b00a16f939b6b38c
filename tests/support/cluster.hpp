// A primary and replicas in one actor system on CAF's deterministic test
// coordinator, every log on one in-memory file system. Every message and
// timer is driven by the test: `settle()` delivers messages until none are
// left (timers only fire through `advance`), so a test reads as a story of
// appends, faults and checks.
#pragma once

#define FAIL(msg) CAF_FAIL(msg)  // dsl.hpp's request<T>() uses an undefined FAIL
#include "caf/test/dsl.hpp"

#include <memory>
#include <string>
#include <vector>

#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"
#include "tests/support/recording_machine.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

namespace walrus::testing {

struct cluster_config : caf::actor_system_config {
  cluster_config() { walrus::add_message_types(*this); }
};

struct replica_node {
  std::string id;
  std::shared_ptr<wal::log> log;
  std::shared_ptr<recording_machine> machine;
  replica_actor handle;
};

class cluster_fixture : public test_coordinator_fixture<cluster_config> {
 public:
  cluster_fixture() : fs(std::make_unique<wal::memory_file_system>(7)) {}

  ~cluster_fixture() override {
    for (auto& r : replicas) caf::anon_send(r.handle, stop_atom_v);
    if (primary) caf::anon_send(primary, stop_atom_v);
    sched.run();
    // Actors release their logs as they terminate; drop ours before the
    // file system they live on.
    replicas.clear();
    primary_log.reset();
  }

  static primary_config default_primary_config() {
    primary_config cfg;
    cfg.session.max_batch_bytes = 4096;
    cfg.session.window_bytes = 16384;
    cfg.session.window_batches = 8;
    cfg.max_block_bytes = 1024;
    cfg.backoff = backoff_config{std::chrono::milliseconds(10), 2.0, std::chrono::seconds(1), 0.0};
    cfg.max_restarts = 1000;
    cfg.seed = 1;
    return cfg;
  }

  std::shared_ptr<wal::log> open_log(const std::string& dir, uint64_t max_retained_bytes = 0) {
    wal::options opts;
    opts.dir = dir;
    opts.max_retained_bytes = max_retained_bytes;
    opts.enforce_retention_on_roll = false;  // the ack tracker decides when
    opts.fs = fs.get();
    opts.sync = wal::sync_policy::group();
    opts.segment_bytes = 64 * 1024;
    auto opened = wal::log::open(opts);
    CAF_REQUIRE(opened.ok());
    return std::shared_ptr<wal::log>(std::move(*opened));
  }

  void start_primary(primary_config cfg = default_primary_config(),
                     uint64_t max_retained_bytes = 0) {
    primary_log = open_log("/primary", max_retained_bytes);
    primary = spawn_primary(sys, cfg, primary_log);
    sched.run();
  }

  replica_node& add_replica(std::function<bool(const batch&)> drop = nullptr) {
    replica_node node;
    node.id = "r" + std::to_string(replicas.size() + 1);
    node.log = open_log("/" + node.id);
    node.machine = std::make_shared<recording_machine>();
    replica_config cfg;
    cfg.replica_id = node.id;
    cfg.transport = local_transport(local_link_config{node.id, primary, std::move(drop)});
    cfg.backoff = backoff_config{std::chrono::milliseconds(10), 2.0, std::chrono::seconds(1), 0.0};
    cfg.max_restarts = 1000;
    cfg.seed = 2;
    node.handle = spawn_replica(sys, cfg, node.machine, node.log);
    replicas.push_back(std::move(node));
    sched.run();
    return replicas.back();
  }

  // Appends one transaction on the primary and returns its last sequence.
  uint64_t write(const std::vector<std::string>& entries) {
    std::vector<std::string_view> views(entries.begin(), entries.end());
    auto range = primary_log->append(views);
    CAF_REQUIRE(range.ok());
    written.push_back(entries);
    return range->last;
  }

  // Writes `count` transactions of 1..3 entries of a few dozen bytes.
  void write_many(int count) {
    for (int i = 0; i < count; ++i) {
      std::vector<std::string> tx;
      int n = 1 + (next_id % 3);
      for (int k = 0; k < n; ++k)
        tx.push_back("tx" + std::to_string(next_id) + "." + std::to_string(k) + ":" +
                     std::string(static_cast<size_t>(20 + next_id % 50), 'v'));
      ++next_id;
      write(tx);
    }
  }

  void settle() { sched.run(); }

  // Holds (or releases) the batches on replica i's link, as a replica that
  // stopped reading would.
  void stall(size_t i, bool on) {
    caf::anon_send(caf::actor_cast<local_link_actor>(replica_part(i, "transport")), stall_atom_v,
                   on);
    settle();
  }

  // `rounds` times: write `per_round` transactions, deliver.
  void write_rounds(int rounds, int per_round) {
    for (int i = 0; i < rounds; ++i) {
      write_many(per_round);
      settle();
    }
  }

  // Lets `t` pass on the test clock and delivers what it triggers.
  void advance(caf::timespan t) {
    advance_time(t);
    sched.run();
  }

  // Delivers messages and passes time in small steps until every replica
  // applied everything the primary holds, or `limit` passed.
  bool converge(caf::timespan limit = std::chrono::seconds(30)) {
    auto step = std::chrono::milliseconds(10);
    for (caf::timespan passed{0}; passed <= limit; passed += step) {
      sched.run();
      if (converged()) return true;
      advance(step);
    }
    return converged();
  }

  bool converged() const {
    for (auto& r : replicas)
      if (r.machine->applied_sequence() != primary_log->durable_sequence()) return false;
    return true;
  }

  // Every replica applied exactly the primary's transactions, in order, each
  // whole and once.
  void check_identical() {
    for (auto& r : replicas) {
      CAF_CHECK_EQUAL(r.machine->violations(), 0u);
      auto txs = r.machine->transactions();
      CAF_REQUIRE_EQUAL(txs.size(), written.size());
      uint64_t seq = 1;
      for (size_t i = 0; i < txs.size(); ++i) {
        CAF_CHECK_EQUAL(txs[i].first_sequence, seq);
        CAF_CHECK_EQUAL(txs[i].entries, written[i]);
        seq += txs[i].entries.size();
      }
      CAF_CHECK_EQUAL(r.log->last_sequence(), primary_log->last_sequence());
    }
  }

  // A request answered by delivering messages only: the fixture's own
  // request<T>() fires timers too and would spin on periodic ones.
  template <class T, class Handle, class... Ts>
  T query(const Handle& hdl, Ts&&... xs) {
    auto handle = self->request(hdl, caf::infinite, std::forward<Ts>(xs)...);
    sched.run();
    T result{};
    handle.receive([&](T& x) { result = std::move(x); },
                   [&](caf::error& err) { CAF_FAIL("query failed: " << sys.render(err)); });
    return result;
  }

  caf::actor part(const std::string& path) {
    return query<caf::actor>(primary, child_atom_v, path);
  }

  caf::actor replica_part(size_t i, const std::string& name) {
    return query<caf::actor>(replicas[i].handle, child_atom_v, name);
  }

  primary_status primary_state() { return query<primary_status>(primary, status_atom_v); }

  std::unique_ptr<wal::memory_file_system> fs;
  std::shared_ptr<wal::log> primary_log;
  primary_actor primary;
  std::vector<replica_node> replicas;
  std::vector<std::vector<std::string>> written;
  int next_id = 0;
};

}  // namespace walrus::testing
