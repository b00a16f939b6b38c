// The plain structs that walrus actors exchange. Each mirrors a concept of
// docs/architecture.md; the wire forms live in proto/replication.proto and
// only the transport converts between the two. Every struct has `inspect`
// and is registered in messages/type_ids.hpp (an unregistered type would
// serialise as nothing without a word).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "base/errc.hpp"
#include "base/shared_bytes.hpp"
#include "caf/error.hpp"
#include "caf/meta/load_callback.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/timespan.hpp"

namespace walrus {

// shared_bytes travel by reference inside a process; serialised (a remote
// actor, a test's round trip) they are their bytes, and load into a buffer
// of their own.
template <class Inspector>
typename std::enable_if<Inspector::reads_state, typename Inspector::result_type>::type inspect(
    Inspector& f, shared_bytes& x) {
  std::string bytes{x.bytes};
  return f(bytes);
}

template <class Inspector>
typename std::enable_if<Inspector::writes_state, typename Inspector::result_type>::type inspect(
    Inspector& f, shared_bytes& x) {
  std::string bytes;
  auto adopt = caf::meta::load_callback([&]() -> caf::error {
    x = shared_bytes::adopt(std::move(bytes));
    return caf::none;
  });
  return f(bytes, adopt);
}

// How far a replica has taken an entry. Ordered: applied implies durable
// implies received.
enum class ack_level : uint8_t { received = 0, durable = 1, applied = 2 };

const char* to_string(ack_level level) noexcept;

// Where a batch sits inside a transaction that is too large for one batch
// (mirrors wire::Fragment).
enum class fragment : uint8_t { none = 0, first = 1, middle = 2, last = 3 };

// Consecutive WAL records read from the primary's log: the unit from tailer
// to batcher. `records` holds records first_sequence..last_sequence framed
// exactly as in the log (docs/wal-format.md §1), shared with the tail cache
// or the cursor's read buffer, not copied. The first and the last record
// that end a transaction are named (0: none), with the bytes of `records`
// through each. An empty block has first == 0.
struct entry_block {
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  shared_bytes records;
  uint64_t first_commit = 0;
  uint32_t first_commit_end = 0;
  uint64_t last_commit = 0;
  uint32_t last_commit_end = 0;
  // True when the tailer had nothing more to read: a batcher with linger 0
  // seals what it holds.
  bool caught_up = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entry_block& x) {
  return f(caf::meta::type_name("entry_block"), x.first_sequence, x.last_sequence, x.records,
           x.first_commit, x.first_commit_end, x.last_commit, x.last_commit_end, x.caught_up);
}

// A sealed batch: batcher -> transport -> applier (mirrors wire::Batch).
// The concatenation of `records` is the Batch's records field: the WAL
// records first..last, compressed with `codec` (then in one piece). An
// uncompressed batch shares its pieces with the primary's log buffers.
struct batch {
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  uint8_t codec = 0;  // codec::codec_id
  fragment part = fragment::none;
  uint32_t uncompressed_size = 0;  // bytes of the records before compression
  std::vector<shared_bytes> records;
  uint64_t sent_at_us = 0;  // primary clock

  // Bytes of the records field (after compression).
  size_t records_bytes() const {
    size_t sum = 0;
    for (const auto& piece : records) sum += piece.size();
    return sum;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
  return f(caf::meta::type_name("batch"), x.first_sequence, x.last_sequence, x.codec, x.part,
           x.uncompressed_size, x.records, x.sent_at_us);
}

// Replica progress, the only source of credit upstream (mirrors wire::Ack).
// Invariants: durable <= received and applied <= received; applied may run
// ahead of durable because the applier applies before it syncs.
struct ack {
  uint64_t received_sequence = 0;
  uint64_t durable_sequence = 0;
  uint64_t applied_sequence = 0;
  uint64_t timestamp_us = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ack& x) {
  return f(caf::meta::type_name("ack"), x.received_sequence, x.durable_sequence, x.applied_sequence,
           x.timestamp_us);
}

// "Resend from here" (mirrors wire::Nack).
struct nack {
  uint64_t from_sequence = 0;
  errc code = errc::none;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, nack& x) {
  return f(caf::meta::type_name("nack"), x.from_sequence, x.code, x.reason);
}

// A request to the ack tracker: answer once `replicas` replicas reached
// `sequence` at `level`, or fail with errc::timeout after `timeout`.
struct wait_request {
  uint64_t sequence = 0;
  uint32_t replicas = 1;
  ack_level level = ack_level::durable;
  caf::timespan timeout{0};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wait_request& x) {
  return f(caf::meta::type_name("wait_request"), x.sequence, x.replicas, x.level, x.timeout);
}

// What a replica's transport asks of the primary when the replica connects.
struct session_request {
  std::string replica_id;
  uint64_t start_sequence = 1;   // the replica holds everything before
  uint8_t codec = 0;             // negotiated codec::codec_id; every batch uses it
  uint32_t max_batch_bytes = 0;  // 0: the primary's default; else the peer's bound
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_request& x) {
  return f(caf::meta::type_name("session_request"), x.replica_id, x.start_sequence, x.codec,
           x.max_batch_bytes);
}

// The states of a replica (docs/architecture.md has the transition table).
enum class replica_state : uint8_t {
  connecting = 0,
  streaming = 1,
  applying = 2,
  syncing = 3,
  acknowledging = 4,
  waiting_for_data = 5,
  bootstrapping = 6,
  error = 7,
};

const char* to_string(replica_state state) noexcept;

struct state_transition {
  replica_state from = replica_state::connecting;
  replica_state to = replica_state::connecting;
  uint64_t at_us = 0;  // wall clock, microseconds since the epoch
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_transition& x) {
  return f(caf::meta::type_name("state_transition"), x.from, x.to, x.at_us);
}

// One replica as the primary sees it.
struct replica_info {
  std::string replica_id;
  std::string link;  // "streaming", "catching_up", "down", "lost"
  uint64_t received_sequence = 0;
  uint64_t durable_sequence = 0;
  uint64_t applied_sequence = 0;
  uint64_t lag_entries = 0;         // primary durable - replica applied
  uint64_t lag_bytes = 0;           // WAL bytes between the two
  uint64_t lag_ms = 0;              // age of the oldest entry not yet applied
  uint64_t link_down_since_us = 0;  // 0 while the link is up
  uint64_t in_flight_bytes = 0;     // sent, not yet acknowledged
  // Batches sealed for this replica since the primary started (resends
  // included), and their entry bytes before and after compression.
  uint64_t batches_sent = 0;
  uint64_t batch_bytes = 0;
  uint64_t batch_wire_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_info& x) {
  return f(caf::meta::type_name("replica_info"), x.replica_id, x.link, x.received_sequence,
           x.durable_sequence, x.applied_sequence, x.lag_entries, x.lag_bytes, x.lag_ms,
           x.link_down_since_us, x.in_flight_bytes, x.batches_sent, x.batch_bytes,
           x.batch_wire_bytes);
}

struct primary_status {
  uint64_t first_retained = 0;
  uint64_t last_sequence = 0;
  uint64_t durable_sequence = 0;
  std::vector<replica_info> replicas;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, primary_status& x) {
  return f(caf::meta::type_name("primary_status"), x.first_retained, x.last_sequence,
           x.durable_sequence, x.replicas);
}

// A snapshot on its way from the primary's connection to the replica's
// applier (docs/protocol.md §7): `begin`, the bytes in `chunk`s at
// contiguous offsets, then `end` once the transport checked the length and
// CRC32C of the whole.
struct snapshot_piece {
  enum step_kind : uint8_t { begin = 0, chunk = 1, end = 2 };
  uint8_t step = begin;
  uint64_t sequence = 0;  // the snapshot holds every entry up to here
  uint64_t total_bytes = 0;
  uint64_t offset = 0;  // of `data` in the snapshot
  std::string data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_piece& x) {
  return f(caf::meta::type_name("snapshot_piece"), x.step, x.sequence, x.total_bytes, x.offset,
           x.data);
}

// A replica's bootstrap by snapshot, for status: the transfer in progress
// (received < total) or the last one installed.
struct snapshot_progress {
  uint64_t sequence = 0;
  uint64_t total_bytes = 0;
  uint64_t received_bytes = 0;
  uint32_t installed = 0;  // snapshots installed since the applier started
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_progress& x) {
  return f(caf::meta::type_name("snapshot_progress"), x.sequence, x.total_bytes, x.received_bytes,
           x.installed);
}

struct replica_status {
  std::string replica_id;
  replica_state state = replica_state::connecting;
  uint64_t received_sequence = 0;
  uint64_t durable_sequence = 0;
  uint64_t applied_sequence = 0;
  uint64_t primary_sequence = 0;              // newest sequence the primary announced
  std::vector<state_transition> transitions;  // the most recent ones, oldest first
  std::string last_error;
  // Catch-up progress: entries known on the primary and not yet applied, and
  // the recent apply rate (entries per second, smoothed over about a second).
  uint64_t entries_remaining = 0;
  uint64_t apply_rate = 0;
  uint64_t link_down_since_us = 0;  // 0 while the link to the primary is up
  // Times the link to the primary came up again after having been up (a
  // redial after a drop, or a restarted transport), since the applier started.
  uint64_t link_reconnects = 0;
  // How long the replica has been behind what the primary announced: 0 while
  // applied == primary_sequence.
  uint64_t lag_ms = 0;
  // Restarts of the replica front's children since the process started.
  uint32_t applier_restarts = 0;
  uint32_t transport_restarts = 0;
  snapshot_progress snapshot;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_status& x) {
  return f(caf::meta::type_name("replica_status"), x.replica_id, x.state, x.received_sequence,
           x.durable_sequence, x.applied_sequence, x.primary_sequence, x.transitions, x.last_error,
           x.entries_remaining, x.apply_rate, x.link_down_since_us, x.link_reconnects, x.lag_ms,
           x.applier_restarts, x.transport_restarts, x.snapshot);
}

struct child_status {
  std::string name;
  bool running = false;
  uint32_t restarts = 0;
  std::string last_failure;  // rendered error of the last abnormal exit
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_status& x) {
  return f(caf::meta::type_name("child_status"), x.name, x.running, x.restarts, x.last_failure);
}

struct supervisor_status {
  std::string name;
  std::vector<child_status> children;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_status& x) {
  return f(caf::meta::type_name("supervisor_status"), x.name, x.children);
}

}  // namespace walrus
