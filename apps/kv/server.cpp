// A walrus-kv node: start-up, the wait for a signal, and the orderly stop.
//
// Threads: CAF's scheduler (2 workers: the replication actors), the
// middleman's I/O thread (every broker: RESP clients, the replication
// listener and its connections, or the replica's connector), the writer
// (primary), the WAL's interval syncer (--sync group or interval), and the
// main thread, which only waits for SIGINT/SIGTERM (blocked in every thread,
// taken with sigwait) and then stops the parts in order:
//   RESP broker (stop accepting, answer what was received, close)
//   -> writer (runs what is queued) -> WAL sync
//   -> replication actors -> WAL close -> ~actor_system.
// A second SIGINT/SIGTERM during that exits at once.
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "actors/applier.hpp"
#include "actors/connector.hpp"
#include "actors/listener.hpp"
#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "apps/kv/metrics.hpp"
#include "apps/kv/server_internal.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/atom.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"

namespace walrus::kv::server {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> stopping{false};
std::atomic<int> fatal_exit{0};

struct server_config : caf::actor_system_config {
  server_config() {
    walrus::add_message_types(*this);
    load<caf::io::middleman>();
    // One worker per core, policy sharing: against work stealing, SET -P 16
    // +22 %, SET+WAIT p99 halved (docs/benchmarks.md). A --config file may
    // choose otherwise.
    walrus::use_recommended_scheduler(*this);
  }
};

int fail(const std::string& message) {
  std::fprintf(stderr, "walrus-kv: %s\n", message.c_str());
  return 1;
}

std::string random_hex(size_t n) {
  std::random_device rd;
  std::mt19937_64 gen{(static_cast<uint64_t>(rd()) << 32) ^ rd()};
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) out += digits[gen() % 16];
  return out;
}

// Asks the main thread to stop with exit code 1 (from any thread).
void request_fatal_stop(const std::string& why) {
  if (stopping.load()) return;
  std::fprintf(stderr, "walrus-kv: fatal: %s\n", why.c_str());
  fatal_exit.store(1);
  ::kill(::getpid(), SIGUSR1);
}

// Calls request_fatal_stop when `hdl` terminates before the orderly stop.
template <class Handle>
void stop_process_when_down(const Handle& hdl, std::string what) {
  auto ptr = caf::actor_cast<caf::strong_actor_ptr>(hdl);
  if (!ptr) return;
  ptr->get()->attach_functor([what](const caf::error& reason) {
    request_fatal_stop(what + " stopped: " + (reason ? render(reason) : std::string{"normally"}));
  });
}

// Sends the stop message through `stop` and waits until `hdl` is gone.
template <class Handle, class Stop>
bool stop_and_wait(caf::actor_system& sys, const Handle& hdl, Stop stop,
                   std::chrono::milliseconds timeout) {
  if (!hdl) return true;
  caf::scoped_actor self{sys};
  self->monitor(hdl);
  stop(self);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(timeout) >> [] {});
  return down;
}

// An exclusive lock on DIR/LOCK for the life of the process: two nodes on
// one data folder would corrupt its WAL.
class folder_lock {
 public:
  ~folder_lock() {
    if (fd_ >= 0) ::close(fd_);
  }
  status acquire(const fs::path& dir) {
    auto path = (dir / "LOCK").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return status{errc::io_error, "cannot open " + path + ": " + std::strerror(errno)};
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
      return status{errc::io_error,
                    errno == EWOULDBLOCK
                        ? "the data folder " + dir.string() + " is in use by another walrus-kv"
                        : "cannot lock " + path + ": " + std::strerror(errno)};
    return ok_status();
  }

 private:
  int fd_ = -1;
};

// The replica's name at the primary: --replica-id, else DIR/replica-id
// (created with a random name on first start) so restarts keep it.
result<std::string> resolve_replica_id(const options& opts) {
  auto path = fs::path(opts.dir) / "replica-id";
  std::string id = opts.replica_id;
  if (id.empty()) {
    std::ifstream in(path);
    std::getline(in, id);
    if (!id.empty()) return id;
    id = "replica-" + random_hex(8);
  }
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  out.close();
  if (!out) return status{errc::io_error, "cannot write " + path.string()};
  return id;
}

// The WAL policy behind --sync: under `group` the writer syncs once per
// round (server_writer.cpp), so appends must not wait for an fdatasync; the
// interval thread is only a backstop.
wal::sync_policy wal_policy(const options& opts) {
  if (opts.mode == run_mode::primary && opts.sync.mode == wal::sync_policy::kind::group)
    return wal::sync_policy::every(std::chrono::milliseconds(1000));
  return opts.sync;
}

// Fails at once when host:port cannot be bound (another process listens
// there). walrus::listen() reports that too, but only after its 5 s request
// timeout: the listener quits during its start without answering.
status probe_port(const std::string& host, uint16_t port) {
  if (port == 0) return ok_status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return status{errc::io_error, "cannot resolve " + host + ": " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard{found, ::freeaddrinfo};
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ok_status();  // let the listener report it
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc = ::bind(fd, found->ai_addr, found->ai_addrlen);
  int err = errno;
  ::close(fd);
  if (rc != 0) return status{errc::io_error, std::strerror(err)};
  return ok_status();
}

const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGUSR1";
}

}  // namespace

int run_server(const options& opts) {
  // Every thread (CAF's included, created later) inherits this mask; the
  // main thread takes the signals with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  bool primary = opts.mode == run_mode::primary;

  // The data folder.
  fs::path dir{opts.dir};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create the data folder " + opts.dir + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) return fail("the data folder " + opts.dir + " is not a folder");
  folder_lock lock;
  if (auto st = lock.acquire(dir); !st.ok()) return fail(st.message());
  std::string replica_id;
  if (!primary) {
    auto id = resolve_replica_id(opts);
    if (!id) return fail(id.error().message());
    replica_id = *id;
  }

  // The WAL, and the store rebuilt from the newest snapshot and the WAL
  // after it. Until a snapshot exists the WAL is the only copy of the data:
  // load_newest_snapshot protects it from retention (protect_from).
  wal::options wo;
  wo.dir = (dir / "wal").string();
  wo.sync = wal_policy(opts);
  wo.segment_bytes = opts.wal_segment_bytes;
  auto opened = wal::log::open(wo);
  if (!opened) return fail("cannot open the WAL in " + wo.dir + ": " + opened.error().to_string());
  std::shared_ptr<wal::log> log{std::move(*opened)};
  auto db = std::make_shared<store>();
  snapshot_folder snapshot_dir{(dir / "snapshots").string()};
  auto loaded = load_newest_snapshot(snapshot_dir, *db, *log);
  if (!loaded) return fail("cannot load the newest snapshot: " + loaded.error().to_string());
  if (auto st = replay(*log, *db); !st.ok())
    return fail("cannot rebuild the store from the WAL in " + wo.dir + " after snapshot " +
                std::to_string(*loaded) + ": " + st.to_string());
  snapshotter::config sc;
  sc.db = db;
  sc.log = log;
  sc.dir = snapshot_dir.dir();
  sc.every_entries = opts.snapshot_entries;
  sc.trim_wal = !primary;  // a primary's WAL is trimmed by its ack tracker
  sc.loaded_sequence = *loaded;
  auto snapshots = std::make_unique<snapshotter>(sc);

  system_clock time;
  auto node = std::make_shared<node_context>();
  node->opts = opts;
  node->role = primary ? node_role::primary : node_role::replica;
  node->db = db;
  node->log = log;
  node->time = &time;
  node->snapshots = snapshots.get();
  node->replica_id = replica_id;
  node->run_id = random_hex(40);

  server_config cfg;
  if (auto st = configure_actor_system(cfg, opts); !st.ok()) return fail(st.message());
  caf::actor_system sys{cfg};
  std::unique_ptr<writer> write;
  caf::actor listener;
  caf::actor resp;
  caf::actor metrics;

  // Stops whatever was started, in order; returns the WAL's last sequence.
  auto shutdown = [&] {
    stopping.store(true);
    stop_and_wait(
        sys, metrics,
        [&](caf::scoped_actor& self) { self->send_exit(metrics, caf::exit_reason::user_shutdown); },
        std::chrono::seconds(5));
    stop_and_wait(
        sys, resp, [&](caf::scoped_actor& self) { self->send(resp, stop_atom_v); },
        std::chrono::seconds(10));
    if (write) write->stop();
    snapshots->stop();
    // A failed WAL (now or before) is reported once, by the last line.
    (void)log->sync();
    stop_and_wait(
        sys, listener,
        [&](caf::scoped_actor& self) {
          self->send_exit(listener, caf::exit_reason::user_shutdown);
        },
        std::chrono::seconds(5));
    stop_and_wait(
        sys, node->primary,
        [&](caf::scoped_actor& self) { self->send(node->primary, stop_atom_v); },
        std::chrono::seconds(5));
    stop_and_wait(
        sys, node->replica,
        [&](caf::scoped_actor& self) { self->send(node->replica, stop_atom_v); },
        std::chrono::seconds(5));
    (void)log->close();
  };

  // Replication.
  if (primary) {
    primary_config pc;
    pc.primary_id = "primary";
    pc.session.codec = opts.codec;
    node->primary = spawn_primary(sys, pc, log);
    listener_config lc;
    lc.host = opts.bind;
    lc.port = opts.repl_port;
    lc.handshake.cluster_id = opts.cluster_id;
    lc.handshake.primary_id = "primary";
    lc.handshake.codec_preference = {opts.codec.id};
    if (opts.codec.id != codec::codec_id::none)
      lc.handshake.codec_preference.push_back(codec::codec_id::none);
    lc.handshake.secret = opts.secret;
    lc.snapshots = make_snapshot_source(snapshot_dir.dir());
    if (auto free = probe_port(opts.bind, opts.repl_port); !free.ok()) {
      shutdown();
      return fail("cannot listen for replicas on " + opts.bind + ":" +
                  std::to_string(opts.repl_port) + ": " + free.message());
    }
    auto listening = listen(sys, lc, node->primary, log);
    if (!listening) {
      shutdown();
      return fail("cannot listen for replicas on " + opts.bind + ":" +
                  std::to_string(opts.repl_port) + ": " + listening.error().to_string());
    }
    listener = listening->first;
    node->repl_port = listening->second;
    writer::config wc;
    wc.log = log;
    wc.db = db;
    wc.time = &time;
    wc.sync_each_round = opts.sync.mode == wal::sync_policy::kind::group;
    wc.batch_appends = opts.sync.mode != wal::sync_policy::kind::always;
    write = std::make_unique<writer>(wc, [](const std::string& why) { request_fatal_stop(why); });
    node->write = write.get();
  } else {
    connector_config cc;
    cc.host = opts.primary_host;
    cc.port = opts.primary_port;
    cc.handshake.cluster_id = opts.cluster_id;
    cc.handshake.replica_id = replica_id;
    cc.handshake.codecs = {codec::codec_id::zstd, codec::codec_id::snappy};
    cc.handshake.secret = opts.secret;
    cc.reconnect =
        backoff_config{std::chrono::milliseconds(100), 2.0, std::chrono::seconds(2), 0.2};
    if (auto valid = wire_format::validate(cc.handshake); !valid.ok())
      return fail("invalid replication settings: " + valid.message());
    replica_config rc;
    rc.replica_id = replica_id;
    rc.transport = network_transport(cc);
    rc.snapshots = make_snapshot_sink(db, snapshot_dir.dir(), log);
    node->replica = spawn_replica(sys, rc, db, log);
  }

  snapshots->start();

  // RESP clients.
  resp = spawn_resp_server(sys, node);
  if (write) write->start(resp);
  uint16_t port = 0;
  std::string listen_error;
  {
    caf::scoped_actor self{sys};
    self->request(resp, std::chrono::seconds(10), caf::get_atom_v)
        .receive([&](uint16_t p) { port = p; },
                 [&](caf::error& err) { listen_error = render(err); });
  }
  if (!listen_error.empty()) {
    shutdown();
    return fail(listen_error);
  }
  uint16_t metrics_port = 0;
  if (opts.metrics_port) {
    metrics = spawn_metrics_server(sys, node, *opts.metrics_port, resp);
    caf::scoped_actor self{sys};
    self->request(metrics, std::chrono::seconds(10), caf::get_atom_v)
        .receive([&](uint16_t p) { metrics_port = p; },
                 [&](caf::error& err) { listen_error = render(err); });
  }
  if (!listen_error.empty()) {
    shutdown();
    return fail(listen_error);
  }
  stop_process_when_down(resp, "the RESP server");
  if (primary) {
    stop_process_when_down(node->primary, "the replication primary");
    stop_process_when_down(listener, "the replication listener");
  } else {
    stop_process_when_down(node->replica, "the replica");
  }

  if (metrics)
    std::printf("walrus-kv: metrics on %s:%u (GET /metrics)\n", opts.bind.c_str(), metrics_port);
  if (primary)
    std::printf(
        "walrus-kv: primary listening on %s:%u (RESP), replication on %s:%u, data in %s, WAL at "
        "sequence %lu, sync %s\n",
        opts.bind.c_str(), port, opts.bind.c_str(), node->repl_port, opts.dir.c_str(),
        static_cast<unsigned long>(log->last_sequence()), opts.sync.to_string().c_str());
  else
    std::printf(
        "walrus-kv: replica %s listening on %s:%u (RESP), replicating from %s:%u, data in %s, "
        "WAL at sequence %lu\n",
        replica_id.c_str(), opts.bind.c_str(), port, opts.primary_host.c_str(), opts.primary_port,
        opts.dir.c_str(), static_cast<unsigned long>(log->last_sequence()));
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  if (sig != SIGUSR1)
    std::fprintf(stderr, "walrus-kv: %s received, shutting down (again to exit at once)\n",
                 signal_name(sig));
  // A second signal ends the process at once.
  std::thread([] {
    sigset_t again;
    sigemptyset(&again);
    sigaddset(&again, SIGINT);
    sigaddset(&again, SIGTERM);
    int second = 0;
    while (sigwait(&again, &second) != 0) {
    }
    std::fprintf(stderr, "walrus-kv: %s received again, exiting now\n", signal_name(second));
    std::_Exit(128 + second);
  }).detach();
  shutdown();
  int code = fatal_exit.load();
  auto last = static_cast<unsigned long>(log->last_sequence());
  // health() is errc::closed after a clean close; any other error is the
  // failure that stopped the log.
  if (auto health = log->health(); code == 0 && !health.ok() && health.code() != errc::closed) {
    // Reads went on, writes were refused: not a clean stop. A restart
    // recovers what the WAL holds.
    std::fprintf(stderr, "walrus-kv: stopped at sequence %lu with a failed WAL: %s\n", last,
                 health.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "walrus-kv: %s at sequence %lu\n",
               code == 0 ? "stopped cleanly" : "stopped after a fatal error", last);
  return code;
}

}  // namespace walrus::kv::server
