// Deterministic network tests: a primary on `mars` and a replica on `earth`,
// two actor systems in one process joined by CAF's simulated network
// (caf/test/io_dsl.hpp). Every message, every byte on the virtual wire and
// every timer is driven by the test.
#define CAF_SUITE net_dsl
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/io_dsl.hpp"

#include "actors/connector.hpp"
#include "actors/listener.hpp"
#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"
#include "tests/support/recording_machine.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;
using namespace walrus::testing;
using namespace std::chrono_literals;

namespace {

struct node_config : caf::actor_system_config {
  node_config() {
    walrus::add_message_types(*this);
    load<caf::io::middleman>();
  }
};

using base = test_coordinator_fixture<node_config>;

constexpr uint16_t repl_port = 7379;
const std::string primary_host = "mars";

struct fixture : point_to_point_fixture<base> {
  wal::memory_file_system fs{3};
  std::shared_ptr<wal::log> primary_log;
  std::shared_ptr<wal::log> replica_log;
  std::shared_ptr<recording_machine> machine = std::make_shared<recording_machine>();
  primary_actor primary;
  caf::actor listener;
  replica_actor replica;
  caf::io::accept_handle acceptor = caf::io::accept_handle::from_int(4242);
  std::pair<caf::io::connection_handle, caf::io::connection_handle> link;

  ~fixture() {
    if (replica) caf::anon_send(replica, stop_atom_v);
    if (primary) caf::anon_send(primary, stop_atom_v);
    if (listener) caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
    deliver();
  }

  // Messages, network traffic and timers already due, on both nodes, until
  // nothing moves; time itself only moves through `pass`.
  void deliver() {
    auto step = [](planet_type* p) {
      return p->sched.try_run_once() || p->mpx.read_data() || p->mpx.try_exec_runnable() ||
             p->mpx.try_accept_connection() || p->sched.clock().advance_time(caf::timespan{1}) > 0;
    };
    while (step(&earth) || step(&mars)) {
    }
  }

  // A few milliseconds of virtual time on both nodes, delivering everything
  // in between (a dial, a handshake and a round of batches fit in it).
  void settle() {
    for (int i = 0; i < 5; ++i) {
      deliver();
      earth.sched.clock().advance_time(1ms);
      mars.sched.clock().advance_time(1ms);
    }
    deliver();
  }

  void pass(planet_type& p, caf::timespan t) {
    p.sched.clock().advance_time(t);
    deliver();
  }

  std::shared_ptr<wal::log> open_log(const std::string& dir) {
    wal::options opts;
    opts.dir = dir;
    opts.fs = &fs;
    opts.sync = wal::sync_policy::none();
    auto opened = wal::log::open(opts);
    CAF_REQUIRE(opened.ok());
    return std::shared_ptr<wal::log>(std::move(*opened));
  }

  void start_primary(std::optional<std::string> secret = std::nullopt) {
    primary_log = open_log("/primary");
    primary = spawn_primary(mars.sys, primary_config{}, primary_log);
    listener_config lc;
    lc.port = repl_port;
    lc.handshake.cluster_id = "c1";
    lc.handshake.primary_id = "p";
    lc.handshake.codec_preference = {codec::codec_id::snappy, codec::codec_id::none};
    lc.handshake.secret = std::move(secret);
    lc.handshake.heartbeat_interval_ms = 100;
    prepare_link();
    listener = spawn_listener(mars.sys, lc, primary, primary_log);
    deliver();
  }

  // One more virtual connection from earth to mars:7379.
  void prepare_link() { link = prepare_connection(mars, earth, primary_host, repl_port, acceptor); }

  void start_replica(std::string cluster = "c1", std::optional<std::string> secret = std::nullopt,
                     uint32_t version = wire_format::protocol_version) {
    replica_log = open_log("/replica");
    connector_config cc;
    cc.host = primary_host;
    cc.port = repl_port;
    cc.handshake.cluster_id = std::move(cluster);
    cc.handshake.replica_id = "r1";
    cc.handshake.codecs = {codec::codec_id::snappy};
    cc.handshake.secret = std::move(secret);
    cc.handshake.announce_version = version;
    cc.reconnect = backoff_config{100ms, 2.0, 1s, 0.0};
    cc.seed = 5;
    replica_config rc;
    rc.replica_id = "r1";
    rc.transport = network_transport(cc);
    replica = spawn_replica(earth.sys, rc, machine, replica_log);
    settle();
  }

  void write(int n) {
    for (int i = 0; i < n; ++i) {
      std::string a = "key" + std::to_string(i) + "=" + std::string(40, 'v');
      std::string b = "second entry of " + std::to_string(i);
      std::vector<std::string_view> tx{a, b};
      CAF_REQUIRE(primary_log->append(tx).ok());
    }
  }

  replica_status replica_state() {
    auto rh = earth.self->request(replica, caf::infinite, status_atom_v);
    deliver();
    replica_status out;
    rh.receive([&](replica_status& s) { out = std::move(s); },
               [&](caf::error& e) { CAF_FAIL(render(e)); });
    return out;
  }

  primary_status primary_state() {
    auto rh = mars.self->request(primary, caf::infinite, status_atom_v);
    deliver();
    primary_status out;
    rh.receive([&](primary_status& s) { out = std::move(s); },
               [&](caf::error& e) { CAF_FAIL(render(e)); });
    return out;
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(net_dsl_tests, fixture)

CAF_TEST(the handshake succeeds and entries stream) {
  start_primary();
  write(10);
  start_replica();
  write(90);
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), primary_log->durable_sequence());
  CAF_CHECK_EQUAL(machine->transactions().size(), 100u);
  CAF_CHECK_EQUAL(machine->violations(), 0u);
  auto st = primary_state();
  CAF_REQUIRE_EQUAL(st.replicas.size(), 1u);
  CAF_CHECK_EQUAL(st.replicas[0].replica_id, "r1");
  CAF_CHECK_EQUAL(st.replicas[0].applied_sequence, primary_log->durable_sequence());
}

CAF_TEST(a dropped link is dialled again and streaming resumes without gap or repeat) {
  start_primary();
  start_replica();
  write(20);
  settle();
  CAF_REQUIRE_EQUAL(machine->applied_sequence(), 40u);
  CAF_CHECK_EQUAL(replica_state().link_reconnects, 0u);  // heartbeats are not reconnects
  // The connection breaks: both ends learn it (the simulated network does
  // not propagate a close by itself).
  auto transport = [&] {
    auto rh = earth.self->request(replica, caf::infinite, child_atom_v, std::string{"transport"});
    settle();
    caf::actor out;
    rh.receive([&](caf::actor& a) { out = a; }, [&](caf::error& e) { CAF_FAIL(render(e)); });
    return out;
  }();
  caf::anon_send(transport, caf::io::connection_closed_msg{link.second});
  settle();
  CAF_CHECK_NOT_EQUAL(replica_state().link_down_since_us, 0u);
  CAF_CHECK_EQUAL(replica_state().link_reconnects, 0u);
  write(20);  // written while the replica is away
  prepare_link();
  pass(earth, 100ms);  // the reconnect backoff
  write(5);
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), primary_log->durable_sequence());
  CAF_CHECK_EQUAL(machine->transactions().size(), 45u);
  CAF_CHECK_EQUAL(machine->violations(), 0u);
  CAF_CHECK_EQUAL(replica_state().link_down_since_us, 0u);
  CAF_CHECK_EQUAL(replica_state().link_reconnects, 1u);
  // A second of heartbeats on the new link counts nothing more.
  for (int i = 0; i < 10; ++i) {
    mars.sched.clock().advance_time(100ms);
    earth.sched.clock().advance_time(100ms);
    deliver();
  }
  auto after = replica_state();
  CAF_CHECK_EQUAL(after.link_down_since_us, 0u);
  CAF_CHECK_EQUAL(after.link_reconnects, 1u);
}

CAF_TEST(a replica of another cluster is refused and applies nothing) {
  start_primary();
  write(5);
  start_replica("c2");
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), 0u);
  CAF_CHECK(primary_state().replicas.empty());
  CAF_CHECK_NOT_EQUAL(replica_state().link_down_since_us, 0u);
  // Refused dials never brought the link up: nothing to count as a reconnect.
  CAF_CHECK_EQUAL(replica_state().link_reconnects, 0u);
}

CAF_TEST(a replica speaking another protocol version is refused and applies nothing) {
  start_primary();
  write(5);
  start_replica("c1", std::nullopt, wire_format::protocol_version + 1);
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), 0u);
  CAF_CHECK(primary_state().replicas.empty());
  auto st = replica_state();
  CAF_CHECK_NOT_EQUAL(st.link_down_since_us, 0u);
  // The primary's Error frame names both versions; the replica shows it.
  CAF_CHECK_NOT_EQUAL(st.last_error.find("version"), std::string::npos);
}

CAF_TEST(a replica with the wrong secret is refused) {
  start_primary(std::string{"secret"});
  write(5);
  start_replica("c1", std::string{"not it"});
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), 0u);
  CAF_CHECK(primary_state().replicas.empty());
}

CAF_TEST(a replica with the right secret is served) {
  start_primary(std::string{"secret"});
  write(5);
  start_replica("c1", std::string{"secret"});
  settle();
  CAF_CHECK_EQUAL(machine->applied_sequence(), 10u);
}

CAF_TEST(a silent primary is dropped after the peer timeout) {
  start_primary();
  start_replica();
  write(5);
  settle();
  CAF_REQUIRE_EQUAL(machine->applied_sequence(), 10u);
  // Only earth's clock moves: mars never gets to send a heartbeat.
  earth.sched.clock().advance_time(999ms);
  while (earth.sched.try_run_once()) {
  }
  CAF_CHECK_EQUAL(replica_state().link_down_since_us, 0u);
  earth.sched.clock().advance_time(100ms);
  while (earth.sched.try_run_once()) {
  }
  CAF_CHECK_NOT_EQUAL(replica_state().link_down_since_us, 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
