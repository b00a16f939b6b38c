#define CAF_SUITE pipeline
#include "tests/support/cluster.hpp"

#include <algorithm>

using namespace walrus;
using namespace walrus::testing;
using namespace std::chrono_literals;

CAF_TEST_FIXTURE_SCOPE(pipeline_tests, cluster_fixture)

CAF_TEST(entries reach one replica in order and whole) {
  start_primary();
  add_replica();
  write_many(200);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(entries reach three replicas and they end identical) {
  start_primary();
  write_many(50);  // written before any replica joined
  add_replica();
  add_replica();
  add_replica();
  write_many(300);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(a transaction larger than a batch travels in fragments and applies whole) {
  start_primary();
  add_replica();
  write_many(3);
  std::vector<std::string> big;
  for (int i = 0; i < 40; ++i) big.push_back("big." + std::to_string(i) + std::string(300, 'x'));
  write(big);  // ~12 KiB, three times max_batch_bytes
  write_many(3);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(a dropped batch is answered by a nack and sent again) {
  start_primary();
  int dropped = 0;
  add_replica([&](const batch& b) {
    if (dropped == 0 && b.first_sequence > 20) {
      ++dropped;
      return true;
    }
    return false;
  });
  for (int i = 0; i < 20; ++i) {
    write_many(10);
    settle();
  }
  CAF_REQUIRE(converge());
  CAF_CHECK_EQUAL(dropped, 1);
  check_identical();
}

CAF_TEST(a stalled replica holds back the primary within the window) {
  auto cfg = default_primary_config();
  start_primary(cfg);
  bool stalled = false;
  size_t crossed = 0;  // uncompressed bytes sent to the link while stalled
  add_replica([&](const batch& b) {
    if (stalled) crossed += b.uncompressed_size;
    return false;
  });
  write_many(10);
  CAF_REQUIRE(converge());
  auto link = caf::actor_cast<local_link_actor>(replica_part(0, "transport"));
  caf::anon_send(link, stall_atom_v, true);
  settle();
  stalled = true;
  // The primary keeps appending; what crosses to the stalled link stays
  // within the window however much is written.
  for (int round = 0; round < 50; ++round) {
    write_many(20);
    settle();
    CAF_CHECK_LESS_OR_EQUAL(crossed, cfg.session.window_bytes);
  }
  CAF_CHECK_GREATER(crossed, 0u);
  auto st = primary_state();
  CAF_REQUIRE_EQUAL(st.replicas.size(), 1u);
  CAF_CHECK_GREATER(st.replicas[0].lag_entries, 1000u);
  CAF_CHECK_LESS(replicas[0].machine->applied_sequence(), primary_log->durable_sequence());
  // After it resumes, everything arrives.
  stalled = false;
  caf::anon_send(link, stall_atom_v, false);
  CAF_REQUIRE(converge());
  check_identical();
  CAF_CHECK_EQUAL(primary_state().replicas[0].lag_entries, 0u);
}

CAF_TEST(wait answers when enough replicas reached the level) {
  start_primary();
  add_replica();
  add_replica();
  write_many(20);
  auto target = primary_log->durable_sequence();
  auto pending = self->request(primary, caf::infinite, wait_atom_v,
                               wait_request{target, 2, ack_level::durable, caf::timespan{1s}});
  CAF_REQUIRE(converge());
  uint32_t reached = 0;
  pending.receive([&](uint32_t n) { reached = n; },
                  [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  CAF_CHECK_EQUAL(reached, 2u);
  // Already reached: answered at once.
  CAF_CHECK_EQUAL(query<uint32_t>(primary, wait_atom_v,
                                  wait_request{target, 2, ack_level::applied, caf::timespan{1s}}),
                  2u);
}

CAF_TEST(wait times out saying how many replicas got there) {
  start_primary();
  add_replica();
  add_replica();
  write_many(5);
  CAF_REQUIRE(converge());
  stall(1, true);
  write_many(5);
  settle();
  auto target = primary_log->durable_sequence();
  auto pending = self->request(primary, caf::infinite, wait_atom_v,
                               wait_request{target, 2, ack_level::durable, caf::timespan{500ms}});
  settle();
  advance(499ms);
  CAF_CHECK(self->mailbox().empty());
  advance(1ms);
  caf::error failure;
  pending.receive([&](uint32_t) { CAF_FAIL("expected a timeout"); },
                  [&](caf::error& err) { failure = err; });
  CAF_CHECK(failure == errc::timeout);
  CAF_CHECK_EQUAL(sys.render(failure), "walrus::timeout: 1 of 2 replicas reached sequence " +
                                           std::to_string(target) + " (durable) within 500 ms");
}

CAF_TEST(many pending waits each settle or time out on their own) {
  start_primary();
  add_replica();
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  auto both = primary_log->durable_sequence();  // both replicas have it
  stall(1, true);
  write_many(10);
  settle();
  auto one = primary_log->durable_sequence();  // replica 0 only
  CAF_REQUIRE_GREATER(one, both);
  // Waits for two replicas past `both`, in mixed sequence and deadline
  // order: those due before the stall ends time out naming the count, the
  // others are answered once the stalled replica catches up.
  using handle = decltype(self->request(primary, caf::infinite, wait_atom_v, wait_request{}));
  struct expected {
    handle response;
    bool times_out;
  };
  std::vector<expected> waits;
  for (int i = 0; i < 40; ++i) {
    auto seq = both + 1 + static_cast<uint64_t>((i * 7) % (one - both));
    auto timeout = std::chrono::milliseconds(100 + (i * 37) % 400);
    waits.push_back(expected{self->request(primary, caf::infinite, wait_atom_v,
                                           wait_request{seq, 2, ack_level::applied, timeout}),
                             timeout < 300ms});
  }
  // Answered at once: what one replica has, or both had before the stall.
  CAF_CHECK_EQUAL(query<uint32_t>(primary, wait_atom_v,
                                  wait_request{one, 1, ack_level::durable, caf::timespan{1s}}),
                  1u);
  CAF_CHECK_EQUAL(query<uint32_t>(primary, wait_atom_v,
                                  wait_request{both, 2, ack_level::applied, caf::timespan{1s}}),
                  2u);
  settle();
  advance(300ms);
  stall(1, false);
  CAF_REQUIRE(converge());
  size_t timed_out = 0;
  for (auto& w : waits) {
    w.response.receive(
        [&](uint32_t n) {
          CAF_CHECK(!w.times_out);
          CAF_CHECK_EQUAL(n, 2u);
        },
        [&](caf::error& err) {
          CAF_CHECK(w.times_out);
          CAF_CHECK(err == errc::timeout);
          CAF_CHECK(sys.render(err).find("1 of 2 replicas") != std::string::npos);
          ++timed_out;
        });
  }
  CAF_CHECK_GREATER(timed_out, 0u);
  CAF_CHECK_LESS(timed_out, waits.size());
}

CAF_TEST(a restarted primary keeps the wal a detached replica still needs) {
  start_primary();
  add_replica();
  write_many(3000);
  CAF_REQUIRE(converge());
  auto needs = replicas[0].log->durable_sequence() + 1;
  caf::anon_send(replicas[0].handle, stop_atom_v);
  settle();
  // The primary restarts on its WAL while the replica is away; its new ack
  // tracker learns of the replica from the retention slots file only.
  caf::anon_send(primary, stop_atom_v);
  settle();
  primary = nullptr;
  primary_log.reset();
  primary_log = open_log("/primary");
  primary = spawn_primary(sys, default_primary_config(), primary_log);
  settle();
  write_many(3000);  // more segments, more retention rounds
  for (int i = 0; i < 5; ++i) advance(std::chrono::seconds(1));
  CAF_CHECK_LESS_OR_EQUAL(primary_log->first_sequence(), needs);
  auto st = primary_state();
  CAF_REQUIRE_EQUAL(st.replicas.size(), 1u);
  CAF_CHECK_EQUAL(st.replicas[0].replica_id, replicas[0].id);
  CAF_CHECK_EQUAL(st.replicas[0].link, "down");
}

// Kills `path` (a part of the primary, or "applier"/"transport" of replica
// 0) at many points of a long run; the replicas must end identical.
void kill_repeatedly(cluster_fixture& f, const std::string& path) {
  f.start_primary();
  f.add_replica();
  f.add_replica();
  caf::actor previous;
  for (int point = 0; point < 12; ++point) {
    f.write_many(15);
    for (int step = 0; step < point * 7 % 23; ++step) f.sched.try_run_once();
    auto find = [&] {
      return path == "applier" || path == "transport" ? f.replica_part(0, path) : f.part(path);
    };
    // Wait out the backoff of the previous restart.
    auto victim = find();
    for (int i = 0; i < 100 && !victim; ++i) {
      f.advance(50ms);
      victim = find();
    }
    CAF_REQUIRE(victim);
    CAF_CHECK_NOT_EQUAL(victim, previous);  // a new incarnation each time
    previous = victim;
    caf::anon_send_exit(victim, caf::exit_reason::kill);
    f.settle();
    f.write_many(5);
    f.advance(50ms);  // past the restart backoff
  }
  CAF_REQUIRE(f.converge());
  f.check_identical();
}

CAF_TEST(a killed tailer is restarted and nothing is lost or repeated) {
  kill_repeatedly(*this, "tailer@r1");
}

CAF_TEST(a killed batcher is restarted and nothing is lost or repeated) {
  kill_repeatedly(*this, "batcher@r1");
}

CAF_TEST(a killed ack tracker is restarted and nothing is lost or repeated) {
  kill_repeatedly(*this, "ack_tracker");
  // The new tracker (once its backoff passed) knows both replicas again.
  advance(2s);
  auto st = primary_state();
  CAF_CHECK_EQUAL(st.replicas.size(), 2u);
}

CAF_TEST(a killed applier is restarted and nothing is lost or repeated) {
  kill_repeatedly(*this, "applier");
}

CAF_TEST(a killed transport is restarted and nothing is lost or repeated) {
  kill_repeatedly(*this, "transport");
}

CAF_TEST(a session that exceeds its restart intensity escalates and the replica comes back) {
  auto cfg = default_primary_config();
  cfg.max_restarts = 2;
  cfg.restart_period = 10s;
  start_primary(cfg);
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  auto first_link = replica_part(0, "transport");
  for (int i = 0; i < 3; ++i) {
    caf::anon_send_exit(part("tailer@r1"), caf::exit_reason::kill);
    settle();
    advance(100ms);
  }
  // The third failure within the period ended the session and its link; the
  // replica dialled again with a new one.
  CAF_CHECK_NOT_EQUAL(replica_part(0, "transport"), first_link);
  write_many(10);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(replica status shows its state and positions and every transition) {
  start_primary();
  add_replica();
  write_many(30);
  CAF_REQUIRE(converge());
  auto rs = query<replica_status>(replicas[0].handle, status_atom_v);
  CAF_CHECK_EQUAL(rs.replica_id, "r1");
  CAF_CHECK(rs.state == replica_state::waiting_for_data);
  CAF_CHECK_EQUAL(rs.applied_sequence, primary_log->durable_sequence());
  CAF_CHECK_EQUAL(rs.durable_sequence, primary_log->durable_sequence());
  std::vector<std::string> seen;
  for (auto& t : rs.transitions) seen.push_back(to_string(t.to));
  for (auto expected : {"STREAMING", "APPLYING", "SYNCING", "ACKNOWLEDGING", "WAITING_FOR_DATA"})
    CAF_CHECK(std::find(seen.begin(), seen.end(), expected) != seen.end());
}

CAF_TEST(lag of a stalled replica grows in entries bytes and milliseconds) {
  start_primary();
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  stall(0, true);
  write_many(200);
  settle();
  advance(750ms);
  auto r = primary_state().replicas.at(0);
  CAF_CHECK_GREATER(r.lag_entries, 0u);
  CAF_CHECK_GREATER(r.lag_bytes, 0u);
  CAF_CHECK_GREATER_OR_EQUAL(r.lag_ms, 750u);
  CAF_CHECK_EQUAL(r.link, "streaming");
}

CAF_TEST(retention keeps what the slowest replica needs and marks one past the cap lost) {
  // 48 KiB cap on 64 KiB segments: at most the active segment survives a cap.
  start_primary(default_primary_config(), 48 * 1024);
  add_replica();
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  stall(1, true);
  auto stalled_at = replicas[1].machine->applied_sequence();
  write_rounds(40, 50);
  advance(1s);  // a retention round
  auto st = primary_state();
  CAF_REQUIRE_EQUAL(st.replicas.size(), 2u);
  CAF_CHECK_EQUAL(st.replicas[0].link, "streaming");
  CAF_CHECK_EQUAL(st.replicas[1].link, "lost");
  CAF_CHECK_GREATER(st.first_retained, stalled_at + 1);
  // The primary goes on serving the replica that keeps up.
  write_many(20);
  settle();
  CAF_CHECK_EQUAL(replicas[0].machine->applied_sequence(), primary_log->durable_sequence());
}

CAF_TEST(without caps retention drops only what every replica has) {
  start_primary();
  add_replica();
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  stall(1, true);
  auto stalled_at = replicas[1].machine->applied_sequence();
  write_rounds(40, 50);
  advance(1s);
  auto st = primary_state();
  CAF_CHECK_LESS_OR_EQUAL(st.first_retained, stalled_at + 1);
  CAF_CHECK_EQUAL(st.replicas[1].link, "streaming");
  stall(1, false);
  CAF_REQUIRE(converge());
  check_identical();
  // Once both have everything, the old segments go.
  advance(1s);
  CAF_CHECK_GREATER(primary_state().first_retained, stalled_at + 1);
}

// Found by the simulation (seed 7): the applier acks a fragmented
// transaction only once it is whole, so fragments in flight must not fill the
// window, or a transaction larger than the window never passes.
CAF_TEST(a transaction larger than the window travels in fragments and applies whole) {
  auto cfg = default_primary_config();
  cfg.session.window_batches = 1;  // not even a second fragment fits
  start_primary(cfg);
  add_replica();
  write_many(3);
  std::vector<std::string> big;
  for (int i = 0; i < 60; ++i) big.push_back("huge." + std::to_string(i) + std::string(1000, 'x'));
  write(big);  // ~60 KiB: almost four times window_bytes
  write_many(3);
  CAF_REQUIRE(converge(std::chrono::seconds(5)));
  check_identical();
}

// Found by the simulation (seed 175): a linger timer that fires while the
// window is full must not leave the open batch behind once acks make room.
CAF_TEST(what lingers while the window is full is sealed when an ack makes room) {
  auto cfg = default_primary_config();
  cfg.session.linger = 5ms;
  cfg.session.window_batches = 1;
  start_primary(cfg);
  add_replica();
  write_many(1);
  CAF_REQUIRE(converge());
  stall(0, true);
  write_many(1);  // sealed after the linger time, held by the stalled link
  settle();
  advance(5ms);
  write_many(1);  // lingers; when its time is up the window is still full
  settle();
  advance(5ms);
  stall(0, false);
  CAF_REQUIRE(converge(std::chrono::seconds(10)));
  check_identical();
}

// Found by the simulation (seed 864): a block the tailer sent before it saw a
// rewind can start exactly at the rewind's position. The batcher must not
// take it (nor what follows it) for the answer to the rewind: the answer may
// cut its blocks elsewhere, and every later block would look stale.
CAF_TEST(a block sent before a rewind is not taken for its answer) {
  auto cfg = default_primary_config();
  cfg.session.linger = 1s;
  cfg.session.resend_timeout = std::chrono::hours(1);
  start_primary(cfg);
  auto sent = std::make_shared<std::vector<batch>>();
  auto link = sys.spawn([sent](transport_actor::pointer) -> transport_actor::behavior_type {
    return {
        [sent](batch& b) { sent->push_back(std::move(b)); },
        [](ack_atom, const ack&) {},
        [](nack_atom, const nack&) {},
    };
  });
  CAF_CHECK_EQUAL(query<uint64_t>(primary, attach_atom_v, session_request{"r1", 1, 0, 0}, link),
                  0u);
  auto tailer = part("tailer@r1");
  auto batcher = caf::actor_cast<batcher_actor>(part("batcher@r1"));
  write({"a1", "a2", "a3"});
  // The batcher is asked to resend from 1 before it sees the tailer's block
  // 1..3, which the tailer sends before it sees the rewind.
  caf::anon_send(batcher, nack_atom_v, nack{1, errc::sequence_gap, "test"});
  CAF_REQUIRE(sched.prioritize(tailer));
  sched.run_once();              // the wake: block 1..3, queued behind the nack
  for (int i = 0; i < 2; ++i) {  // the nack (a rewind to 1), then block 1..3
    CAF_REQUIRE(sched.prioritize(batcher));
    sched.run_once();
  }
  write({"b4", "b5"});  // the answer to the rewind reads 1..5 in one block
  settle();
  advance(1s);  // the linger time
  CAF_REQUIRE(!sent->empty());
  CAF_CHECK_EQUAL(sent->back().first_sequence, 1u);
  CAF_CHECK_EQUAL(sent->back().last_sequence, 5u);
  caf::anon_send_exit(link, caf::exit_reason::user_shutdown);
}

// Found by the simulation (seed 5176, restricted to kills, stalls and
// restarts): a replica behind the first retained sequence is marked lost,
// but if its session had already read what retention dropped, it catches up
// and must count again (in waits, in retention, in the status).
CAF_TEST(a replica marked lost that receives what it missed counts again) {
  auto cfg = default_primary_config();
  cfg.session.max_batch_bytes = 16384;
  cfg.session.window_bytes = 1 << 20;  // the stalled link holds all it misses
  cfg.session.window_batches = 64;
  start_primary(cfg, 48 * 1024);
  add_replica();
  add_replica();
  write_many(10);
  CAF_REQUIRE(converge());
  stall(1, true);
  write_rounds(40, 50);
  advance(1s);  // a retention round: r2 is behind the first retained sequence
  CAF_REQUIRE_EQUAL(primary_state().replicas.at(1).link, "lost");
  stall(1, false);
  CAF_REQUIRE(converge());
  check_identical();
  auto st = primary_state();
  CAF_CHECK_EQUAL(st.replicas.at(1).link, "streaming");
  auto pending =
      self->request(primary, caf::infinite, wait_atom_v,
                    wait_request{st.durable_sequence, 2, ack_level::durable, caf::timespan{500ms}});
  settle();
  advance(500ms);  // the deadline, had it counted one replica only
  uint32_t reached = 0;
  pending.receive([&](uint32_t n) { reached = n; }, [&](caf::error&) {});
  CAF_CHECK_EQUAL(reached, 2u);
}

CAF_TEST_FIXTURE_SCOPE_END()
