// Deterministic simulation of a walrus cluster, FoundationDB style: a primary
// and 1-3 replicas in one actor system on CAF's test coordinator, linked by
// local links, each node on its own simulated disk, all driven by ONE seed.
// One PRNG decides the configuration, the workload, which ready actor runs
// next (per-mailbox order is CAF's; across actors anything goes, which is how
// delays and reordering are simulated), when virtual time moves, and which
// fault strikes where. Nothing else is random: supervisors' jitter and the
// disks' tearing draw from seeds taken from that PRNG, clocks are virtual.
//
// A run: chaos (writes, waits, faults) for a number of steps, then heal (every
// fault lifted, every dead node restarted) and run to quiescence, then the
// invariants of sim_model.hpp and those below:
//   * every replica's WAL and every incarnation of its state machine is a
//     prefix of the primary's history, each transaction applied once;
//   * every append the primary acknowledged survives its crashes;
//   * a sequence confirmed durable on n replicas by a wait is held by at
//     least n replicas at the end;
//   * every replica converges to the primary, unless it was lost to a
//     retention cap and says so (its front exited naming not_retained, or the
//     primary lists it as lost);
//   * the run ends quiet (no actor busy forever).
// A run returns the violations and its fault trace; re-running the seed
// replays the very same run (the fingerprint proves it).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/sim_cluster.hpp"

namespace walrus::testing {

class simulation : public sim_cluster {
 public:
  simulation(uint64_t seed, sim_options opts) : sim_cluster(seed, std::move(opts)) {}

  sim_outcome run() {
    choose_parameters();
    boot();
    chaos();
    heal();
    settle();
    sabotage();
    check();
    teardown();
    out_.fingerprint = fingerprint();
    return std::move(out_);
  }

 private:
  // How the chaos phase spends its steps, per mille, chosen per seed.
  struct pace {
    uint32_t write_permille = 100;
    uint32_t fault_permille = 10;
    uint32_t wait_permille = 10;
    uint32_t advance_permille = 100;
    uint64_t chaos_steps = 2000;
  };

  void choose_parameters() {
    auto& p = params_;
    p.replicas = uniform(1, 3);
    p.segment_bytes = pick(std::vector<uint64_t>{4096, 8192, 16384, 65536});
    p.sync = chance(300) ? wal::sync_policy::always() : wal::sync_policy::group();
    p.retention_cap = chance(250) ? p.segment_bytes * uniform(2, 4) : 0;
    auto& b = p.primary.session;
    b.max_batch_bytes = pick(std::vector<size_t>{512, 1024, 4096, 16384});
    b.max_batch_entries = pick(std::vector<size_t>{4, 64, 16384});
    b.window_bytes = b.max_batch_bytes * uniform(2, 8);
    b.window_batches = uniform(1, 8);
    b.linger = chance(600) ? caf::timespan{0} : millis(1, 20);
    b.resend_timeout = millis(50, 2000);
    p.primary.max_block_bytes = pick(std::vector<size_t>{128, 1024, 65536});
    p.primary.retention_interval = millis(50, 1000);
    // Restart limits a persistent failure exceeds: the supervisor escalates
    // rather than retrying forever.
    p.primary.max_restarts = static_cast<uint32_t>(uniform(5, 30));
    p.primary.restart_period = std::chrono::seconds(uniform(2, 10));
    p.primary.backoff =
        backoff_config{millis(1, 20), 2.0, p.primary.restart_period / (2 * p.primary.max_restarts),
                       static_cast<double>(uniform(0, 5)) / 10.0};
    p.primary.seed = rng_() | 1;
    p.replica_max_restarts = static_cast<uint32_t>(uniform(5, 30));
    p.replica_period = std::chrono::seconds(uniform(2, 10));
    p.replica_backoff =
        backoff_config{millis(1, 20), 2.0, p.replica_period / (2 * p.replica_max_restarts),
                       static_cast<double>(uniform(0, 5)) / 10.0};
    auto& c = pace_;
    c.fault_permille = std::vector<uint32_t>{0, 3, 10, 30}[uniform(0, 3)];
    c.write_permille = static_cast<uint32_t>(uniform(30, 200));
    c.wait_permille = static_cast<uint32_t>(uniform(0, 20));
    c.advance_permille = static_cast<uint32_t>(uniform(20, 150));
    c.chaos_steps = uniform(1000, 10000);
    // Drawn last so that the draws above keep their meaning for old seeds.
    b.max_partial_in_flight = pick(std::vector<size_t>{0, 1, 2, 4});
    std::ostringstream os;
    os << "config: replicas=" << p.replicas << " segment=" << p.segment_bytes
       << " sync=" << p.sync.to_string() << " cap=" << p.retention_cap
       << " batch=" << b.max_batch_bytes << "/" << b.max_batch_entries
       << " window=" << b.window_bytes << "/" << b.window_batches << " linger=" << ms(b.linger)
       << " partial=" << b.max_partial_in_flight << " resend=" << ms(b.resend_timeout)
       << " block=" << p.primary.max_block_bytes
       << " retention_every=" << ms(p.primary.retention_interval)
       << " restarts=" << p.primary.max_restarts << "/" << p.replica_max_restarts
       << " faults=" << c.fault_permille << "permille steps=" << c.chaos_steps;
    out_.trace.push_back(os.str());
  }

  // -- chaos ----------------------------------------------------------------------

  void chaos() {
    auto& p = pace_;
    for (uint64_t n = 0; n < p.chaos_steps; ++n) {
      auto roll = static_cast<uint32_t>(uniform(0, 999));
      if (roll < p.write_permille) {
        write();
      } else if ((roll -= p.write_permille) < p.fault_permille) {
        inject_fault();
      } else if ((roll -= p.fault_permille) < p.wait_permille) {
        issue_wait();
      } else if ((roll -= p.wait_permille) < p.advance_permille || env_->sched.jobs.empty()) {
        advance(chance(50) ? millis(100, 2000) : millis(1, 30));
      } else {
        run_random_job();
      }
      host_duties();
    }
  }

  void write() {
    if (!primary_up()) return;
    auto& b = params_.primary.session;
    std::vector<std::string> payloads;
    size_t count = 1;
    size_t lo = 0, hi = 200;
    if (chance(50)) {  // larger than a batch: travels in fragments
      count = uniform(2, 12);
      lo = b.max_batch_bytes / 4;
      hi = b.max_batch_bytes;
    } else if (chance(300)) {
      count = uniform(2, 6);
    }
    for (size_t k = 0; k < count; ++k) {
      auto tag = "w" + std::to_string(out_.writes) + "." + std::to_string(k) + ":";
      payloads.push_back(tag +
                         std::string(uniform(lo, hi), static_cast<char>('a' + uniform(0, 25))));
    }
    ++out_.writes;
    std::vector<std::string_view> views(payloads.begin(), payloads.end());
    auto range = primary_.log->append(views);
    if (range) {
      history_.appended(*range, payloads, out_.violations);
      return;
    }
    // A failed WAL fails for good: the host's process restarts it.
    crash_primary(
        any_crash_mode(), millis(0, 500),
        "append of w" + std::to_string(out_.writes - 1) + " failed: " + range.error().to_string());
  }

  void issue_wait() {
    auto last = history_.acked_last();
    if (last == 0) return;
    wait_request w;
    w.sequence = uniform(last > 50 ? last - 50 : 1, last);
    w.replicas = static_cast<uint32_t>(uniform(1, replicas_.size()));
    w.level = ack_level::durable;
    w.timeout = millis(10, 3000);
    auto address = address_;
    auto net = net_;
    command([address, net, w](caf::event_based_actor* self) {
      self->request(address, caf::infinite, wait_atom_v, w)
          .then(
              [net, w](uint32_t reached) {
                net->confirmed.push_back({w.sequence, reached});
              },
              [](caf::error&) {});
    });
  }

  // -- faults -------------------------------------------------------------------------

  std::vector<sim_fault> enabled_faults() const {
    std::vector<sim_fault> out;
    for (unsigned f = 0; f < static_cast<unsigned>(sim_fault::count); ++f)
      if ((opts_.faults & (1u << f)) != 0) out.push_back(static_cast<sim_fault>(f));
    return out;
  }

  void inject_fault() {
    auto kinds = enabled_faults();
    if (kinds.empty()) return;
    auto kind = pick(kinds);
    auto i = uniform(0, replicas_.size() - 1);
    auto number = ++out_.faults;
    // Parameters are drawn before the skip check, so that leaving a fault
    // out changes as little as possible of what follows.
    auto mode = any_crash_mode();
    auto downtime = chance(200) ? millis(200, 3000) : millis(0, 100);
    auto fresh = chance(500);
    auto amount = uniform(1, 5);
    auto on_primary = chance(500);
    auto keep_bytes = uniform(0, 64);
    auto long_stall = chance(200);
    auto stall_for = millis(10, 3000);
    std::string label = "fault #" + std::to_string(number) + " " + to_string(kind);
    if (opts_.skip.count(number) != 0) {
      note(label + " skipped");
      return;
    }
    auto& r = replicas_[i];
    switch (kind) {
      case sim_fault::kill_tailer:
      case sim_fault::kill_batcher: {
        auto path = std::string{kind == sim_fault::kill_tailer ? "tailer@" : "batcher@"} + r.id;
        note(label + ": " + path);
        kill_part(caf::actor_cast<caf::actor>(primary_.front), path);
        break;
      }
      case sim_fault::kill_ack_tracker:
        note(label);
        kill_part(caf::actor_cast<caf::actor>(primary_.front), "ack_tracker");
        break;
      case sim_fault::kill_applier:
      case sim_fault::kill_transport: {
        auto part = kind == sim_fault::kill_applier ? "applier" : "transport";
        note(label + ": " + part + " of " + r.id);
        kill_part(caf::actor_cast<caf::actor>(r.front), part);
        break;
      }
      case sim_fault::drop_batches:
        note(label + ": " + r.id + "'s link loses the next " + std::to_string(amount));
        r.drop_budget += static_cast<uint32_t>(amount);
        break;
      case sim_fault::stall:
        if (r.stalled) {
          note(label + ": " + r.id + " resumes");
          set_stall(i, false);
        } else {
          note(label + ": " + r.id + " stalls" +
               (long_stall ? " until healed" : " for " + ms(stall_for)));
          set_stall(i, true);
          if (!long_stall) at(stall_for, [this, i] { set_stall(i, false); });
        }
        break;
      case sim_fault::restart_replica:
        if (r.starting) break;
        crash_replica(i, mode, fresh, downtime, label);
        break;
      case sim_fault::restart_primary:
        if (primary_.starting) break;
        crash_primary(mode, downtime, label);
        break;
      case sim_fault::disk_full: {
        auto& disk = on_primary ? *primary_.disk : *r.disk;
        auto who = on_primary ? std::string{"primary"} : r.id;
        note(label + ": " + who + "'s disk is full for " + ms(stall_for));
        disk.memory->set_capacity(1);  // below what any disk holds: every append fails
        at(stall_for, [&disk] { disk.memory->set_capacity(0); });
        break;
      }
      case sim_fault::fail_sync:
      case sim_fault::tear_write: {
        auto& disk = on_primary ? *primary_.disk : *r.disk;
        auto who = on_primary ? std::string{"primary"} : r.id;
        if (kind == sim_fault::fail_sync) {
          note(label + ": the next fsync on " + who + "'s disk fails");
          disk.memory->fail_next_sync(EIO);
        } else {
          note(label + ": the next write on " + who + "'s disk keeps " +
               std::to_string(keep_bytes) + " bytes and fails");
          disk.memory->tear_next_write(keep_bytes, EIO);
        }
        break;
      }
      case sim_fault::count: break;
    }
  }

  // -- heal and settle ---------------------------------------------------------------

  void heal() {
    note("heal: faults stop");
    for (auto* disk : all_disks()) disk->memory->set_capacity(0);
    for (size_t i = 0; i < replicas_.size(); ++i) {
      replicas_[i].drop_budget = 0;
      set_stall(i, false);
    }
    auto extra = uniform(0, 3);
    for (uint64_t k = 0; k < extra; ++k) write();
  }

  bool converged(const replica_node& r) const {
    auto last = history_.last();
    return r.front && r.log && r.machine->applied_sequence() == last &&
           r.log->last_sequence() == last && r.log->durable_sequence() == last;
  }

  bool settled() const {
    if (!primary_up() || primary_.starting || !events_.empty()) return false;
    if (primary_.log->last_sequence() != history_.last()) return false;
    for (auto& r : replicas_)
      if (!converged(r) && !ahead_of_wal(r) && !lost(r)) return false;
    return true;
  }

  void ask_primary_status() {
    auto address = address_;
    auto net = net_;
    command([address, net](caf::event_based_actor* self) {
      self->request(address, caf::infinite, status_atom_v)
          .then([net](const primary_status& st) { net->status = st; }, [](caf::error&) {});
    });
  }

  // Said lost (by its front's exit, or the primary's status) and really
  // behind what the primary retains.
  bool lost(const replica_node& r) const {
    if (!r.said_lost && !r.listed_lost) return false;
    auto durable = r.log ? r.log->durable_sequence() : r.durable;
    return primary_.log && durable + 1 < primary_.log->first_sequence();
  }

  void read_lost_marks() {
    if (!net_->status) return;
    for (auto& info : net_->status->replicas)
      for (auto& r : replicas_)
        if (r.id == info.replica_id && (info.link == "lost") != r.listed_lost) {
          r.listed_lost = !r.listed_lost;
          note(r.id + (r.listed_lost ? " is listed lost by the primary"
                                     : " is no longer listed lost by the primary"));
        }
    net_->status.reset();
  }

  void settle() {
    auto deadline = now() + std::chrono::minutes(3);
    uint64_t rounds = 0;
    while (!settled()) {
      if (now() > deadline) {
        violation("no convergence within 3 minutes of virtual time after healing: " + positions());
        describe_stuck();
        return;
      }
      for (uint64_t n = 0; n < 100000 && run_random_job(); ++n) host_duties();
      if (!env_->sched.jobs.empty()) {
        violation("actors still busy after 100000 messages in a row: " + positions());
        return;
      }
      host_duties();
      if (settled()) break;
      if (++rounds % 50 == 0) {
        read_lost_marks();
        ask_primary_status();
      }
      advance(millis(1, 50));
      host_duties();
    }
    note("settled: " + positions());
  }

  // What the primary and the replicas say about themselves, into the trace.
  void describe_stuck() {
    auto net = net_;
    auto address = address_;
    auto lines = std::make_shared<std::vector<std::string>>();
    command([address, lines](caf::event_based_actor* self) {
      self->request(address, caf::infinite, status_atom_v)
          .then(
              [lines](const primary_status& st) {
                std::string line = "primary status: first " + std::to_string(st.first_retained) +
                                   " durable " + std::to_string(st.durable_sequence);
                for (auto& r : st.replicas)
                  line += "; " + r.replica_id + " " + r.link + " received " +
                          std::to_string(r.received_sequence) + " durable " +
                          std::to_string(r.durable_sequence) + " in flight " +
                          std::to_string(r.in_flight_bytes);
                lines->push_back(line);
              },
              [lines](caf::error& err) { lines->push_back("primary status: " + render(err)); });
    });
    for (auto& r : replicas_) {
      if (!r.front) continue;
      auto front = r.front;
      auto id = r.id;
      command([front, id, lines](caf::event_based_actor* self) {
        self->request(front, caf::infinite, status_atom_v)
            .then(
                [id, lines](const replica_status& st) {
                  lines->push_back(id + " status: " + to_string(st.state) + " received " +
                                   std::to_string(st.received_sequence) + " durable " +
                                   std::to_string(st.durable_sequence) + " applied " +
                                   std::to_string(st.applied_sequence) + " primary " +
                                   std::to_string(st.primary_sequence) + " last error '" +
                                   st.last_error + "'");
                },
                [id, lines](caf::error& err) { lines->push_back(id + " status: " + render(err)); });
      });
    }
    for (int n = 0; n < 10000 && run_random_job(); ++n) {
    }
    for (auto& line : *lines) note(line);
    if (primary_.log)
      for (auto& r : replicas_) {
        auto from = std::max(primary_.log->first_sequence(), r.machine->applied_sequence() + 1);
        std::vector<sim_record> found;
        auto read = read_log(*primary_.log, from, found);
        note("the primary's WAL read from " + std::to_string(from) + " for " + r.id + ": " +
             std::to_string(found.size()) + " records, " + read.to_string());
      }
  }

  std::string positions() const {
    std::string out = "primary " + (primary_.log ? std::to_string(primary_.log->last_sequence())
                                                 : std::string{"down"});
    out += " (history " + std::to_string(history_.last()) + ")";
    for (auto& r : replicas_) {
      out += ", " + r.id + " ";
      if (!r.front) out += "down ";
      if (r.said_lost || r.listed_lost) out += "lost ";
      out += "applied " + std::to_string(r.machine->applied_sequence());
      if (r.log) out += " wal " + std::to_string(r.log->last_sequence());
    }
    return out;
  }

  // -- checks --------------------------------------------------------------------------

  void sabotage() {
    if (opts_.sabotage == 1) {
      auto& m = *replicas_[0].machine;
      transaction tx;
      tx.first_sequence = m.applied_sequence() + 1;
      std::string foreign = "never written by the primary";
      tx.entries.push_back(foreign);
      (void)m.apply(tx);
    } else if (opts_.sabotage == 2) {
      net_->confirmed.push_back({history_.last(), static_cast<uint32_t>(replicas_.size() + 1)});
    }
  }

  void check() {
    auto& v = out_.violations;
    for (auto& r : replicas_)
      if (!r.log) r.log = open_log(*r.disk, "/" + r.id, 0);  // down at the end: read its disk
    if (primary_.log) {
      if (!primary_.log->health().ok())
        violation("primary: WAL failed at the end: " + primary_.log->health().to_string());
      if (primary_.log->last_sequence() != history_.last())
        violation("primary: WAL ends at " + std::to_string(primary_.log->last_sequence()) +
                  ", its history at " + std::to_string(history_.last()));
      history_.check_log("primary", *primary_.log, v);
    }
    for (auto& r : replicas_) {
      for (size_t k = 0; k < r.machines.size(); ++k) {
        auto who = r.id + " (incarnation " + std::to_string(k + 1) + ")";
        if (auto bad = r.machines[k]->violations(); bad > 0)
          violation(who + ": " + std::to_string(bad) +
                    " transactions applied twice or out of order");
        history_.check_applied(who, r.machines[k]->transactions(), v);
      }
      if (r.log) history_.check_log(r.id, *r.log, v);
      if (converged(r)) continue;
      if (r.said_lost || r.listed_lost) {
        check_lost(r);
      } else if (ahead_of_wal(r)) {
        report_ahead_of_wal(r);
      } else {
        violation(r.id + ": did not converge: " + positions());
      }
    }
    for (auto& [sequence, reached] : net_->confirmed) {
      uint32_t holding = 0;
      for (auto& r : replicas_)
        if (r.log && r.log->durable_sequence() >= sequence) ++holding;
      if (holding < reached)
        violation("sequence " + std::to_string(sequence) + " was confirmed durable on " +
                  std::to_string(reached) + " replicas, " + std::to_string(holding) +
                  " hold it after the run");
    }
  }

  // A lost replica must have been lost to a retention cap, really behind it.
  void check_lost(const replica_node& r) {
    auto needs = r.log ? r.log->durable_sequence() + 1 : 1;
    if (primary_.log && needs >= primary_.log->first_sequence()) {
      violation(r.id + ": said lost but the primary still retains " + std::to_string(needs) +
                " (first retained " + std::to_string(primary_.log->first_sequence()) + ")");
      return;
    }
    if (params_.retention_cap > 0) return;  // lost to the cap: legitimate
    // Every loss without a cap is put down to the known bug: a tracker that
    // knew the replica when it dropped the segments cannot be told apart from
    // one that learnt of it just after (the attach was in its mailbox).
    auto what = r.id + ": lost although the primary has no retention cap";
    auto listed = net_->behind_listed.find(r.id);
    if (listed != net_->behind_listed.end())
      what += listed->second ? " (listed by the primary just after)"
                             : " (unknown to the primary just after)";
    known_issue(retention_forgets_replicas, what);
  }

  // -- the end -------------------------------------------------------------------------

  void teardown() {
    for (auto& r : replicas_)
      if (r.front) caf::anon_send(r.front, stop_atom_v);
    if (primary_.front) caf::anon_send(primary_.front, stop_atom_v);
    caf::anon_send_exit(driver_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(address_, caf::exit_reason::user_shutdown);
    auto& sched = env_->sched;
    for (int n = 0; n < 200000; ++n) {
      if (sched.try_run_once()) continue;
      if (!sched.trigger_timeout()) return;
    }
    violation("actors still busy after stop: messages or timers keep coming");
    sched.jobs.clear();
    sched.clock().cancel_all();
  }

  std::string fingerprint() const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const std::string& s) {
      for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    };
    for (auto& line : out_.trace) mix(line);
    mix(std::to_string(out_.steps) + "/" + std::to_string(history_.last()));
    for (auto& r : replicas_) mix(std::to_string(r.machine->applied_sequence()));
    std::ostringstream os;
    os << std::hex << h;
    return os.str();
  }

  pace pace_;
};

inline sim_outcome run_simulation(uint64_t seed, const sim_options& opts) {
  return simulation{seed, opts}.run();
}

}  // namespace walrus::testing
