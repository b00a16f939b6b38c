// A primary and replicas in separate actor systems of one process, talking
// over real loopback TCP (ports picked by the OS). Unlike cluster.hpp this
// runs on CAF's real scheduler: tests wait for conditions with a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/connector.hpp"
#include "actors/listener.hpp"
#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"
#include "tests/support/recording_machine.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

namespace walrus::testing {

struct net_config : caf::actor_system_config {
  net_config() {
    walrus::add_message_types(*this);
    load<caf::io::middleman>();
    set("scheduler.max-threads", 2);
  }
};

struct net_node {
  net_config cfg;
  caf::actor_system sys{cfg};
};

struct net_replica {
  std::string id;
  std::unique_ptr<net_node> node;
  std::shared_ptr<wal::log> log;
  std::shared_ptr<recording_machine> machine;
  replica_actor handle;
};

class net_cluster {
 public:
  net_cluster() : fs(std::make_unique<wal::memory_file_system>(11)) {}

  ~net_cluster() {
    for (auto& r : replicas) stop(r);
    if (primary) {
      caf::anon_send(primary, stop_atom_v);
      caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
    }
    replicas.clear();
    primary_node.reset();
    primary_log.reset();
  }

  std::shared_ptr<wal::log> open_log(const std::string& dir, uint64_t segment_bytes = 0) {
    wal::options opts;
    opts.dir = dir;
    opts.fs = fs.get();
    opts.sync = wal::sync_policy::none();
    if (segment_bytes > 0) opts.segment_bytes = segment_bytes;
    auto opened = wal::log::open(opts);
    CAF_REQUIRE(opened.ok());
    return std::shared_ptr<wal::log>(std::move(*opened));
  }

  void start_primary(std::optional<std::string> secret = std::nullopt,
                     std::shared_ptr<snapshot_source> snapshots = nullptr) {
    primary_node = std::make_unique<net_node>();
    primary_log = open_log("/primary", snapshots ? 4096 : 0);
    primary_config pc;
    pc.session.codec = codec::codec_config{codec::codec_id::zstd, 1};
    primary = spawn_primary(primary_node->sys, pc, primary_log);
    listener_config lc;
    lc.handshake.cluster_id = "test-cluster";
    lc.handshake.primary_id = "primary";
    lc.handshake.codec_preference = {codec::codec_id::zstd, codec::codec_id::none};
    lc.handshake.secret = std::move(secret);
    lc.handshake.heartbeat_interval_ms = 100;
    lc.snapshots = std::move(snapshots);
    lc.snapshot_chunk_bytes = 4096;  // many chunks: the window matters
    lc.snapshot_window_chunks = 4;
    auto listening = listen(primary_node->sys, lc, primary, primary_log);
    CAF_REQUIRE(listening.ok());
    listener = listening->first;
    port = listening->second;
  }

  connector_config connection(const std::string& id) {
    connector_config cc;
    cc.port = port;
    cc.handshake.cluster_id = "test-cluster";
    cc.handshake.replica_id = id;
    cc.handshake.codecs = {codec::codec_id::zstd, codec::codec_id::snappy};
    cc.reconnect =
        backoff_config{std::chrono::milliseconds(20), 2.0, std::chrono::milliseconds(200), 0.2};
    return cc;
  }

  net_replica& add_replica(std::optional<connector_config> cc = std::nullopt,
                           std::shared_ptr<snapshot_sink> snapshots = nullptr,
                           std::shared_ptr<recording_machine> machine = nullptr) {
    net_replica r;
    r.id = "r" + std::to_string(replicas.size() + 1);
    r.node = std::make_unique<net_node>();
    r.log = open_log("/" + r.id);
    r.machine = machine ? std::move(machine) : std::make_shared<recording_machine>();
    replica_config rc;
    rc.replica_id = r.id;
    rc.transport = network_transport(cc ? *cc : connection(r.id));
    rc.snapshots = std::move(snapshots);
    rc.backoff = backoff_config{std::chrono::milliseconds(20), 2.0, std::chrono::seconds(1), 0.2};
    r.handle = spawn_replica(r.node->sys, rc, r.machine, r.log);
    replicas.push_back(std::move(r));
    return replicas.back();
  }

  void stop(net_replica& r) {
    if (r.handle) caf::anon_send(r.handle, stop_atom_v);
  }

  uint64_t write(const std::vector<std::string>& entries) {
    std::vector<std::string_view> views(entries.begin(), entries.end());
    auto range = primary_log->append(views);
    CAF_REQUIRE(range.ok());
    written.push_back(entries);
    return range->last;
  }

  void write_many(int count) {
    for (int i = 0; i < count; ++i) {
      std::vector<std::string> tx;
      for (int k = 0; k <= next_id % 3; ++k)
        tx.push_back("net" + std::to_string(next_id) + "." + std::to_string(k) +
                     std::string(static_cast<size_t>(10 + next_id % 90), 'x'));
      ++next_id;
      write(tx);
    }
  }

  template <class Predicate>
  static bool eventually(Predicate pred,
                         std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  }

  bool converge(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return eventually(
        [&] {
          for (auto& r : replicas)
            if (r.machine->applied_sequence() != primary_log->durable_sequence()) return false;
          return true;
        },
        limit);
  }

  void check_identical() {
    for (auto& r : replicas) {
      CAF_CHECK_EQUAL(r.machine->violations(), 0u);
      auto txs = r.machine->transactions();
      CAF_REQUIRE_EQUAL(txs.size(), written.size());
      for (size_t i = 0; i < txs.size(); ++i) CAF_CHECK_EQUAL(txs[i].entries, written[i]);
    }
  }

  template <class T, class Handle, class... Ts>
  T ask(caf::actor_system& sys, const Handle& hdl, Ts&&... xs) {
    caf::scoped_actor self{sys};
    T out{};
    self->request(hdl, std::chrono::seconds(5), std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); },
                 [&](caf::error& err) { CAF_FAIL("request failed: " << render(err)); });
    return out;
  }

  primary_status primary_state() {
    return ask<primary_status>(primary_node->sys, primary, status_atom_v);
  }

  std::unique_ptr<wal::memory_file_system> fs;
  std::unique_ptr<net_node> primary_node;
  std::shared_ptr<wal::log> primary_log;
  primary_actor primary;
  caf::actor listener;
  uint16_t port = 0;
  std::vector<net_replica> replicas;
  std::vector<std::vector<std::string>> written;
  int next_id = 0;
};

}  // namespace walrus::testing
