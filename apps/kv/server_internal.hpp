// The parts of the walrus-kv server and how they meet (not a public API):
//   * the RESP broker (server_broker.cpp): one CAF broker for every client
//     connection; parses requests, answers reads from the store, hands writes
//     to the writer, asks the replication actors for INFO/ROLE/WAIT, and
//     sends replies in request order per connection;
//   * the writer (server_writer.cpp): one thread that runs every write of a
//     primary, in arrival order, as docs/kv.md "Write flow" requires, and
//     groups the writes that arrive together under one fdatasync;
//   * INFO and ROLE texts (server_info.cpp), from the replication status.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apps/kv/clock.hpp"
#include "apps/kv/commands.hpp"
#include "apps/kv/server.hpp"
#include "apps/kv/snapshots.hpp"
#include "apps/kv/store.hpp"
#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/io/connection_handle.hpp"
#include "messages/interfaces.hpp"
#include "messages/types.hpp"
#include "wal/log.hpp"

namespace walrus::kv::server {

// -- the writer -------------------------------------------------------------------

// One command for the writer: a write of a primary, or a read of a
// connection that still has writes at the writer (so it sees them). Its
// arguments are args [first_arg, first_arg + arg_count) of its job_batch.
struct write_job {
  caf::io::connection_handle hdl;
  uint64_t conn_id = 0;  // the connection's id: CAF reuses handles (fd numbers)
  uint64_t slot = 0;     // the connection's reply slot
  size_t first_arg = 0;
  size_t arg_count = 0;
};

// The commands one broker message produced, with every argument back to
// back in one buffer: no allocation per command. Batches travel broker ->
// writer and come back empty (capacity kept) for the next submit; an
// allocation made on one thread and freed on the other is glibc's slow path.
struct job_batch {
  std::string bytes;         // the arguments of every job, back to back
  std::vector<size_t> ends;  // end offset of each argument in `bytes`
  std::vector<write_job> jobs;

  void add(caf::io::connection_handle hdl, uint64_t conn_id, uint64_t slot,
           const std::vector<std::string_view>& args);
  // Argument `i` (an index into ends) and the bytes of a job's arguments.
  std::string_view arg(size_t i) const {
    size_t begin = i == 0 ? 0 : ends[i - 1];
    return {bytes.data() + begin, ends[i] - begin};
  }
  size_t request_bytes(const write_job& job) const {
    if (job.arg_count == 0) return 0;
    size_t begin = job.first_arg == 0 ? 0 : ends[job.first_arg - 1];
    return ends[job.first_arg + job.arg_count - 1] - begin;
  }
  bool empty() const { return jobs.empty(); }
  void clear() {
    bytes.clear();
    ends.clear();
    jobs.clear();
  }
};

struct job_done {
  caf::io::connection_handle hdl;
  uint64_t conn_id = 0;  // write_job::conn_id
  uint64_t slot = 0;
  bool write = false;        // a write command (else a read queued behind writes)
  size_t request_bytes = 0;  // size of the job's arguments (the connection's budget)
  uint64_t sequence = 0;     // writes: the WAL's last sequence after the command (for WAIT)
  std::string reply;
};

// The replies of one writer round, released together (after its fdatasync).
struct writer_round {
  std::vector<job_done> done;
};

struct writer_stats {
  uint64_t rounds = 0;        // rounds that ran at least one job
  uint64_t jobs = 0;          // commands run
  uint64_t transactions = 0;  // WAL transactions appended (writes with ops, expiry sweeps)
  uint64_t round_syncs = 0;   // fdatasyncs the writer asked for (sync group)
  uint64_t expired_keys = 0;  // keys deleted by the active expiry sweep
  std::string failure;        // the WAL failure that stopped writes; empty while healthy
};

class writer {
 public:
  struct config {
    std::shared_ptr<wal::log> log;
    std::shared_ptr<store> db;
    const clock* time = nullptr;
    bool sync_each_round = false;  // --sync group: one log.sync() per round before replying
    // All but --sync always: a round's transactions go to the WAL with one
    // write at its end (or per staged_flush_bytes), not one write each.
    bool batch_appends = false;
    size_t staged_flush_bytes = 1 << 20;
    size_t max_round_jobs = 4096;
    std::chrono::milliseconds sweep_interval{100};
  };

  // `on_fatal` is called (from the writer thread) when the store rejects a
  // transaction the WAL took: a bug; the process must stop.
  writer(config cfg, std::function<void(const std::string&)> on_fatal);
  ~writer();
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  // Starts the thread; every round's replies go to `sink` as a writer_round.
  void start(caf::actor sink);
  // Queues the batch and wakes the thread once; `batch` comes back empty
  // (a recycled batch, its buffers' capacity kept).
  void submit(job_batch& batch);
  // Runs what is queued, then ends the thread. Idempotent.
  void stop();
  writer_stats stats() const;

 private:
  void loop();
  // Runs the jobs of one batch (part of a round).
  void run_batch(const job_batch& batch);
  // Appends `ops_` as one transaction (or stages it, batch_appends) and
  // applies it; false on failure (then `error` holds the reply text).
  bool commit(std::string& error);
  // Applies `ops_` as the transaction starting at `first`; false (and
  // on_fatal_) if the store refuses it.
  bool apply_ops(uint64_t first, std::string& error);
  // Writes the staged transactions with one append; on failure every write
  // reply from done_[first_staged_done_] on becomes the error.
  void flush_staged();
  // The sequence of the newest transaction committed (staged or appended).
  uint64_t last_committed() const;
  // Refuses writes from now on; says why on stderr and in stats().
  void wal_failed(const char* what, const std::string& text);
  void sweep_expired();

  config cfg_;
  caf::actor sink_;
  std::function<void(const std::string&)> on_fatal_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job_batch> queue_;   // guarded by mu_
  std::vector<job_batch> spare_;  // emptied batches for submit(); guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::thread thread_;

  // Writer thread only.
  op_batch ops_;
  transaction tx_;
  std::string reply_;
  std::vector<std::string_view> args_;
  std::vector<job_done> done_;
  size_t sweep_cursor_ = 0;
  bool appended_in_round_ = false;
  // Staged transactions (batch_appends): their records back to back in
  // staged_bytes_, with record ends and commit bits; the first's sequence.
  std::string staged_bytes_;
  std::vector<size_t> staged_ends_;
  std::string staged_commits_;
  std::vector<std::string_view> staged_views_;
  uint64_t staged_first_ = 0;
  size_t first_staged_done_ = 0;  // done_ index of the first job with staged records
  bool failed_ = false;

  mutable std::mutex stats_mu_;
  writer_stats stats_;  // guarded by stats_mu_
};

// -- the node ---------------------------------------------------------------------

// What the RESP broker needs to know about its node.
struct node_context {
  options opts;
  node_role role = node_role::primary;
  std::shared_ptr<store> db;
  std::shared_ptr<wal::log> log;
  const clock* time = nullptr;
  writer* write = nullptr;  // primary only
  snapshotter* snapshots = nullptr;
  primary_actor primary;   // primary only
  replica_actor replica;   // replica only
  std::string replica_id;  // replica only
  uint16_t resp_port = 0;  // as bound
  uint16_t repl_port = 0;  // primary: as bound
  std::string run_id;      // 40 hex characters, new at every start
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Spawns the RESP broker listening on opts.bind:opts.port. It answers
// (caf::get_atom) with its port, or an error (then it quits) when it could
// not listen. (stop_atom): stop accepting, answer what was received, close
// every connection, quit (at the latest after `drain_timeout`).
caf::actor spawn_resp_server(caf::actor_system& sys, std::shared_ptr<node_context> node,
                             caf::timespan drain_timeout = std::chrono::seconds(5));

// -- INFO and ROLE ----------------------------------------------------------------

// What INFO reports besides the replication status.
struct info_counters {
  size_t connected_clients = 0;
  uint64_t total_connections = 0;
  uint64_t rejected_connections = 0;
  uint64_t total_commands = 0;
  uint64_t protocol_errors = 0;
};

// INFO [section]: "server", "clients", "persistence", "stats", "replication",
// "keyspace", "default"/"all"/"everything" (all of them); the bulk text.
// Exactly one of `primary` and `replica` is set.
std::string info_text(const node_context& node, const info_counters& counters,
                      const primary_status* primary, const replica_status* replica,
                      std::string_view section);
// ROLE, RESP-encoded.
void append_role(std::string& out, const node_context& node, const primary_status* primary,
                 const replica_status* replica);

// A replica's link as Redis names it: "up" while it streams, else "down".
bool replica_link_up(replica_state state);

}  // namespace walrus::kv::server

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(walrus::kv::server::writer_round)
