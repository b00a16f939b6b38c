// The simulated cluster (tests/support/sim.hpp builds the run on it): one
// primary and its replicas in one actor system on CAF's test coordinator,
// each node on its own simulated disk, every random choice drawn from one
// seeded PRNG. It knows how to start a node, crash it (its process dies, its
// disk keeps what the crash mode says) and what a host does when a front
// exits: restart it, unless a replica said it is lost.
#pragma once

#ifndef FAIL
#define FAIL(msg) CAF_FAIL(msg)  // dsl.hpp's request<T>() uses an undefined FAIL
#endif
#include "caf/test/dsl.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "messages/registry.hpp"
#include "tests/support/recording_machine.hpp"
#include "tests/support/sim_actors.hpp"
#include "tests/support/sim_config.hpp"
#include "tests/support/sim_disk.hpp"
#include "tests/support/sim_model.hpp"

namespace walrus::testing {

struct sim_system_config : caf::actor_system_config {
  sim_system_config() { walrus::add_message_types(*this); }
};

// The configuration of the cluster, chosen per seed.
struct sim_parameters {
  size_t replicas = 1;
  uint64_t segment_bytes = 64 * 1024;
  wal::sync_policy sync = wal::sync_policy::group();
  uint64_t retention_cap = 0;  // the primary WAL's byte cap; 0: none
  primary_config primary;
  uint32_t replica_max_restarts = 10;
  caf::timespan replica_period = std::chrono::seconds(10);
  backoff_config replica_backoff;
};

class sim_cluster {
 public:
  using crash_mode = wal::memory_file_system::crash_mode;
  using time_point = caf::actor_clock::time_point;

  sim_cluster(uint64_t seed, sim_options opts) : opts_(std::move(opts)), rng_(seed) {
    out_.seed = seed;
  }

  virtual ~sim_cluster() {
    // Handles first, then the actor system: its actors hold logs on the
    // disks, which go last.
    driver_ = caf::actor{};
    address_ = primary_actor{};
    primary_.front = primary_actor{};
    for (auto& r : replicas_) r.front = replica_actor{};
    net_.reset();
    env_.reset();
  }

  sim_cluster(const sim_cluster&) = delete;
  sim_cluster& operator=(const sim_cluster&) = delete;

 protected:
  using fixture = test_coordinator_fixture<sim_system_config>;

  struct primary_node {
    std::unique_ptr<sim_disk> disk;
    std::shared_ptr<wal::log> log;
    primary_actor front;
    bool starting = false;  // a restart is scheduled
    bool booted = false;    // its WAL was opened before
  };

  struct replica_node {
    std::string id;
    codec::codec_id codec = codec::codec_id::none;
    std::unique_ptr<sim_disk> disk;
    std::shared_ptr<wal::log> log;
    std::shared_ptr<recording_machine> machine;
    std::vector<std::shared_ptr<recording_machine>> machines;  // every incarnation
    replica_actor front;
    bool starting = false;
    bool said_lost = false;    // its front exited naming not_retained
    bool listed_lost = false;  // the primary's status lists it as lost
    uint32_t drop_budget = 0;  // batches its link loses next
    bool stalled = false;
    uint64_t durable = 0;      // its WAL's durable sequence when last seen up
    bool fell_behind = false;  // below the primary's first retained sequence
  };

  // -- randomness -----------------------------------------------------------------

  uint64_t uniform(uint64_t lo, uint64_t hi) {  // inclusive
    return lo + rng_() % (hi - lo + 1);
  }
  bool chance(uint32_t permille) { return uniform(0, 999) < permille; }
  template <class T>
  const T& pick(const std::vector<T>& xs) {
    return xs[uniform(0, xs.size() - 1)];
  }
  caf::timespan millis(uint64_t lo, uint64_t hi) {
    return std::chrono::milliseconds(uniform(lo, hi));
  }
  crash_mode any_crash_mode() {
    return pick(std::vector<crash_mode>{crash_mode::drop_unsynced, crash_mode::tear_unsynced,
                                        crash_mode::keep_unsynced});
  }
  static std::string ms(caf::timespan t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count()) + "ms";
  }

  // -- the trace ------------------------------------------------------------------

  time_point now() const { return env_->sched.clock().now(); }

  void note(const std::string& what) {
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now() - start_).count();
    out_.trace.push_back("t=" + std::to_string(elapsed) + "ms step " + std::to_string(out_.steps) +
                         ": " + what);
  }

  void violation(const std::string& what) { out_.violations.push_back(what); }

  void known_issue(const char* id, const std::string& what) {
    out_.known.push_back(std::string{id} + ": " + what);
    note("known issue " + std::string{id} + ": " + what);
  }

  // -- the scheduler --------------------------------------------------------------

  // Runs one message of a ready actor picked at random.
  bool run_random_job() {
    auto& jobs = env_->sched.jobs;
    if (jobs.empty()) return false;
    auto i = static_cast<std::ptrdiff_t>(uniform(0, jobs.size() - 1));
    if (i != 0) std::rotate(jobs.begin(), jobs.begin() + i, jobs.begin() + i + 1);
    env_->sched.try_run_once();
    ++out_.steps;
    return true;
  }

  void advance(caf::timespan t) { env_->sched.clock().advance_time(t); }

  void at(caf::timespan delay, std::function<void()> f) {
    events_.emplace(now() + delay, std::move(f));
  }

  // A closure run by the driver actor, in turn with every other actor.
  void command(std::function<void(caf::event_based_actor*)> f) {
    caf::anon_send(driver_, sim_command{std::move(f)});
  }

  // -- boot -------------------------------------------------------------------------

  void boot() {
    primary_.disk = std::make_unique<sim_disk>(rng_() | 1);
    for (size_t i = 0; i < params_.replicas; ++i) {
      replica_node r;
      r.id = "r" + std::to_string(i + 1);
      r.codec = static_cast<codec::codec_id>(uniform(0, 2));
      r.disk = std::make_unique<sim_disk>(rng_() | 1);
      replicas_.push_back(std::move(r));
    }
    for (auto* disk : all_disks()) disk->memory->set_clock([this] { return wall_now(); });
    env_ = std::make_unique<fixture>();
    start_ = now();
    net_ = std::make_shared<sim_network>();
    driver_ = env_->sys.spawn(sim_driver, net_);
    address_ = env_->sys.spawn(sim_primary_address, net_);
    start_primary();
    for (size_t i = 0; i < replicas_.size(); ++i) {
      replicas_[i].machine = std::make_shared<recording_machine>();
      replicas_[i].machines.push_back(replicas_[i].machine);
      start_replica(i);
    }
    // The replicas attach before the workload starts (in a random order, but
    // before any time passes): a primary's retention knows no replica that
    // has not attached yet (retention_forgets_replicas).
    for (uint64_t n = 0; n < 100000 && run_random_job(); ++n) host_duties();
  }

  std::vector<sim_disk*> all_disks() {
    std::vector<sim_disk*> out{primary_.disk.get()};
    for (auto& r : replicas_) out.push_back(r.disk.get());
    return out;
  }

  // Virtual time as the file systems and the WAL's age cap see it.
  std::chrono::system_clock::time_point wall_now() const {
    auto since = env_ ? now().time_since_epoch() : caf::actor_clock::duration_type{0};
    return std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(since)};
  }

  // Opens (recovers) a WAL as a new incarnation of the node's process.
  std::shared_ptr<wal::log> open_log(sim_disk& disk, const std::string& dir, uint64_t cap) {
    wal::options opts;
    opts.dir = dir;
    opts.fs = &disk.boot();
    opts.sync = params_.sync;
    opts.segment_bytes = params_.segment_bytes;
    opts.max_retained_bytes = cap;
    opts.enforce_retention_on_roll = false;  // the ack tracker decides when
    opts.clock = [this] { return wall_now(); };
    auto opened = wal::log::open(opts);
    if (opened) return std::shared_ptr<wal::log>(std::move(*opened));
    // An injected fault fires once: the host tries again, a few times.
    note(dir + ": the WAL does not open: " + opened.error().to_string());
    if (++failed_opens_ > 5)
      violation(dir + ": the WAL does not reopen: " + opened.error().to_string());
    disk.crash(crash_mode::keep_unsynced);
    return nullptr;
  }

  void watch(caf::actor who) {
    command([who](caf::event_based_actor* self) { self->monitor(who); });
  }

  // -- the primary ----------------------------------------------------------------

  bool primary_up() const { return primary_.front && primary_.log && primary_.log->health().ok(); }

  void start_primary() {
    primary_.starting = false;
    primary_.log = open_log(*primary_.disk, "/primary", params_.retention_cap);
    if (!primary_.log) {
      if (failed_opens_ <= 5) {
        primary_.starting = true;
        at(millis(10, 100), [this] { start_primary(); });
      }
      return;
    }
    failed_opens_ = 0;
    if (std::exchange(primary_.booted, true)) {
      history_.reopened(*primary_.log, out_.violations);
      note("primary restarted: WAL " + std::to_string(primary_.log->first_sequence()) + ".." +
           std::to_string(primary_.log->last_sequence()));
    }
    primary_.front = spawn_primary(env_->sys, params_.primary, primary_.log);
    net_->primary = primary_.front;
    watch(caf::actor_cast<caf::actor>(primary_.front));
  }

  // The primary's process dies; its disk keeps what `mode` says. The links
  // attached to it are reset. It comes back after `downtime`.
  void crash_primary(crash_mode mode, caf::timespan downtime, const std::string& why) {
    note("primary crashes (" + why + ", disk " + name(mode) + "), back in " + ms(downtime));
    if (primary_.front) caf::anon_send_exit(primary_.front, caf::exit_reason::kill);
    primary_.front = primary_actor{};
    net_->primary = primary_actor{};
    for (auto& link : net_->links)
      caf::anon_send_exit(link, caf::exit_reason::remote_link_unreachable);
    net_->links.clear();
    primary_.disk->crash(mode);
    primary_.log.reset();
    primary_.starting = true;
    at(downtime, [this] { start_primary(); });
  }

  // -- replicas -------------------------------------------------------------------

  void start_replica(size_t i) {
    auto& r = replicas_[i];
    r.starting = false;
    r.log = open_log(*r.disk, "/" + r.id, 0);
    if (!r.log) {
      if (failed_opens_ <= 5) {
        r.starting = true;
        at(millis(10, 100), [this, i] { start_replica(i); });
      }
      return;
    }
    failed_opens_ = 0;
    local_link_config lc;
    lc.replica_id = r.id;
    lc.primary = address_;
    lc.codec = r.codec;
    lc.drop = [this, i](const batch& b) { return link_loses(replicas_[i], b); };
    replica_config rc;
    rc.replica_id = r.id;
    rc.transport = local_transport(std::move(lc));
    rc.max_restarts = params_.replica_max_restarts;
    rc.restart_period = params_.replica_period;
    rc.backoff = params_.replica_backoff;
    rc.seed = rng_() | 1;
    r.front = spawn_replica(env_->sys, rc, r.machine, r.log);
    r.stalled = false;
    watch(caf::actor_cast<caf::actor>(r.front));
  }

  bool link_loses(replica_node& r, const batch& b) {
    auto range = std::to_string(b.first_sequence) + ".." + std::to_string(b.last_sequence);
    if (opts_.debug)
      note(r.id + "'s link carries batch " + range + " part " +
           std::to_string(static_cast<int>(b.part)));
    if (r.drop_budget == 0) return false;
    --r.drop_budget;
    note(r.id + "'s link loses batch " + range);
    return true;
  }

  // The replica's process dies; the host's state survives (a copy of the
  // machine: the old incarnation may still apply what its WAL held) or is
  // rebuilt from the WAL.
  void crash_replica(size_t i, crash_mode mode, bool fresh_state, caf::timespan downtime,
                     const std::string& why) {
    auto& r = replicas_[i];
    note(r.id + " crashes (" + why + ", disk " + name(mode) +
         (fresh_state ? ", state rebuilt from its WAL" : ", state kept") + "), back in " +
         ms(downtime));
    if (r.front) caf::anon_send_exit(r.front, caf::exit_reason::kill);
    r.front = replica_actor{};
    if (ahead_of_wal(r)) {
      report_ahead_of_wal(r);
      fresh_state = true;  // rebuilt from the WAL: the wedge is that bug's, not a new one
    }
    r.disk->crash(mode);
    r.log.reset();
    auto next = std::make_shared<recording_machine>();
    if (!fresh_state)
      for (auto& tx : r.machine->transactions()) {
        transaction copy;
        copy.first_sequence = tx.first_sequence;
        copy.entries.assign(tx.entries.begin(), tx.entries.end());
        (void)next->apply(copy);
      }
    r.machine = next;
    r.machines.push_back(next);
    r.starting = true;
    at(downtime, [this, i] { start_replica(i); });
  }

  // Each append syncs before the applier applies it, so a machine ahead of
  // what its WAL holds durably is the known bug applier_applies_undurable.
  bool ahead_of_wal(const replica_node& r) const {
    return r.log && r.machine->applied_sequence() > r.log->durable_sequence();
  }

  void report_ahead_of_wal(const replica_node& r) {
    known_issue(applier_applies_undurable,
                r.id + " applied through " + std::to_string(r.machine->applied_sequence()) +
                    " but its WAL holds only " + std::to_string(r.log->durable_sequence()) +
                    " durably (" + r.log->health().to_string() + ")");
  }

  static std::string name(crash_mode mode) {
    switch (mode) {
      case crash_mode::drop_unsynced: return "drops unsynced bytes";
      case crash_mode::tear_unsynced: return "tears unsynced bytes";
      case crash_mode::keep_unsynced: return "keeps unsynced bytes";
    }
    return "?";
  }

  // -- the host -------------------------------------------------------------------

  // Restarts the fronts that exited (unless a replica said it is lost: it
  // needs a bootstrap), runs the events that are due and watches retention.
  void host_duties() {
    while (!net_->exits.empty()) {
      auto msg = std::move(net_->exits.front());
      net_->exits.erase(net_->exits.begin());
      on_exit(msg.source, render(msg.reason));
    }
    while (!events_.empty() && events_.begin()->first <= now()) {
      auto f = std::move(events_.begin()->second);
      events_.erase(events_.begin());
      f();
    }
    watch_retention();
  }

  void on_exit(const caf::actor_addr& source, const std::string& reason) {
    if (primary_.front && source == primary_.front.address()) {
      primary_.front = primary_actor{};
      crash_primary(crash_mode::keep_unsynced, millis(1, 200), "its front exited: " + reason);
      return;
    }
    for (size_t i = 0; i < replicas_.size(); ++i) {
      auto& r = replicas_[i];
      if (!r.front || source != r.front.address()) continue;
      r.front = replica_actor{};
      if (reason.find("not_retained") != std::string::npos) {
        r.said_lost = true;
        note(r.id + "'s front exited, lost: " + reason);
      } else {
        crash_replica(i, crash_mode::keep_unsynced, false, millis(1, 200),
                      "its front exited: " + reason);
      }
    }
  }

  // When retention drops what a replica still needs, asks the primary at
  // once whether it lists that replica (check_lost reports it).
  void watch_retention() {
    if (!primary_.log) return;
    auto first = primary_.log->first_sequence();
    for (auto& r : replicas_) {
      if (r.log) r.durable = r.log->durable_sequence();
      if (r.fell_behind || r.durable + 1 >= first) continue;
      r.fell_behind = true;
      note(r.id + " fell behind retention: it needs " + std::to_string(r.durable + 1) +
           ", the first retained is " + std::to_string(first));
      auto address = address_;
      auto net = net_;
      auto id = r.id;
      command([address, net, id](caf::event_based_actor* self) {
        self->request(address, caf::infinite, status_atom_v)
            .then(
                [net, id](const primary_status& st) {
                  bool listed = false;
                  for (auto& info : st.replicas) listed = listed || info.replica_id == id;
                  net->behind_listed.emplace(id, listed);
                },
                [](caf::error&) {});
      });
    }
  }

  // -- parts ----------------------------------------------------------------------

  // Asks `owner` (a front) for the part's current handle, then kills it; the
  // kill lands behind whatever the part has queued.
  void kill_part(caf::actor owner, std::string path) {
    if (!owner) return;
    command([owner, path](caf::event_based_actor* self) {
      self->request(owner, caf::infinite, child_atom_v, path)
          .then(
              [](const caf::actor& part) {
                if (part) caf::anon_send_exit(part, caf::exit_reason::kill);
              },
              [](caf::error&) {});
    });
  }

  // Holds (or releases) the batches on replica i's current link.
  void set_stall(size_t i, bool on) {
    auto& r = replicas_[i];
    r.stalled = on;
    if (!r.front) return;
    auto front = r.front;
    command([front, on](caf::event_based_actor* self) {
      self->request(front, caf::infinite, child_atom_v, std::string{"transport"})
          .then(
              [on](const caf::actor& link) {
                if (link) caf::anon_send(caf::actor_cast<local_link_actor>(link), stall_atom_v, on);
              },
              [](caf::error&) {});
    });
  }

  sim_options opts_;
  std::mt19937_64 rng_;
  sim_parameters params_;
  sim_outcome out_;
  sim_history history_;
  int failed_opens_ = 0;  // consecutive failed opens of a WAL
  // Disks before the actor system: actors hold logs on them.
  primary_node primary_;
  std::vector<replica_node> replicas_;
  std::multimap<time_point, std::function<void()>> events_;
  std::shared_ptr<sim_network> net_;
  std::unique_ptr<fixture> env_;
  time_point start_;
  caf::actor driver_;
  primary_actor address_;
};

}  // namespace walrus::testing
