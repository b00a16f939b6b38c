#include "actors/applier.hpp"

#include "base/clock.hpp"

#include <array>
#include <cassert>

#include "actors/batch_records.hpp"
#include "actors/durable_watch.hpp"
#include "actors/replica_state.hpp"
#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "codec/codec.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

// A transaction arriving in fragments, held until its LAST piece is in:
// the records' views and the buffers they point into.
struct pending_transaction {
  std::vector<shared_bytes> buffers;
  std::vector<wal::record_view> records;
  size_t bytes = 0;

  uint64_t count() const { return records.size(); }
  uint64_t first_sequence() const { return records.empty() ? 0 : records.front().sequence; }
  void clear() {
    buffers.clear();
    records.clear();
    bytes = 0;
  }
};

struct applier_state {
  applier_config cfg;
  std::unique_ptr<replica_state_machine> states;
  caf::actor upstream;    // the transport of the latest batch; acks go there
  uint64_t received = 0;  // last sequence of the last whole transaction received
  uint64_t nacked = 0;    // the expected sequence already nacked to `upstream`
  uint64_t primary_sequence = 0;
  uint64_t acked_durable = 0;
  pending_transaction pending;
  std::array<std::unique_ptr<codec::block_codec>, 3> codecs;  // by codec_id, made on demand
  // The batch being applied: its records (decompressed if need be) and
  // their views.
  std::vector<shared_bytes> plain;
  std::vector<std::string_view> plain_views;
  std::vector<wal::record_view> records;
  std::vector<std::string_view> pieces;  // what append_encoded writes
  transaction tx;
  std::unique_ptr<durable_watch::subscription> subscription;
  std::string last_error;
  uint64_t link_down_since_us = 0;
  // The link as the transport last reported it. `connected(true)` also comes
  // with every heartbeat, so only a down -> up change after a first up counts
  // as a reconnect.
  bool link_up = false;
  bool link_was_up = false;
  uint64_t link_reconnects = 0;
  uint64_t behind_since_us = 0;  // applied < primary_sequence since then; 0 while level
  snapshot_progress snapshot;
  bool receiving_snapshot = false;
  // Apply rate: entries applied since `rate_since`, folded into `rate` each
  // second or more.
  std::chrono::steady_clock::time_point rate_since = std::chrono::steady_clock::now();
  uint64_t rate_base = 0;
  double rate = 0;
  static inline const char* name = "walrus.applier";
};

using self_ptr = applier_actor::stateful_pointer<applier_state>;

void enter(self_ptr self, replica_state to) {
  if (auto st = self->state.states->enter(to, wall_clock_us()); !st.ok()) self->quit(to_error(st));
}

ack current_ack(const applier_state& st) {
  return ack{st.received, st.cfg.log->durable_sequence(), st.cfg.machine->applied_sequence(),
             wall_clock_us()};
}

void send_ack(self_ptr self) {
  auto& st = self->state;
  if (!st.upstream) return;
  auto a = current_ack(st);
  st.acked_durable = a.durable_sequence;
  caf::anon_send(st.upstream, ack_atom_v, a);
}

void send_nack(self_ptr self, uint64_t from, const status& why) {
  auto& st = self->state;
  if (!why.ok()) st.last_error = why.to_string();
  if (!st.upstream || st.nacked == from) return;  // one nack per expected sequence
  st.nacked = from;
  caf::anon_send(st.upstream, nack_atom_v, nack{from, why.code(), why.message()});
}

// Decompresses (unless uncompressed) and verifies `b`; st.records then
// point into st.plain.
status verify(applier_state& st, const batch& b) {
  auto id = codec::codec_id_from_wire(b.codec);
  if (!id) return id.error();
  st.plain.clear();
  auto wire_bytes = b.records_bytes();
  if (*id != codec::codec_id::none || wire_bytes > st.cfg.max_batch_bytes) {
    auto& codec = st.codecs[static_cast<size_t>(*id)];
    if (!codec) {
      auto made = codec::make_codec(*id);
      if (!made) return made.error();
      codec = std::move(*made);
    }
    std::string joined;  // a compressed batch comes in one piece, from the wire or the batcher
    for (const auto& piece : b.records) joined += piece.bytes;
    std::string out;
    if (auto done = codec->decompress(joined, b.uncompressed_size, st.cfg.max_batch_bytes, out);
        !done.ok())
      return done;
    st.plain.push_back(shared_bytes::adopt(std::move(out)));
  } else if (wire_bytes != b.uncompressed_size) {
    return status{errc::malformed_frame, "batch " + std::to_string(b.first_sequence) +
                                             " declares " + std::to_string(b.uncompressed_size) +
                                             " bytes but holds " + std::to_string(wire_bytes)};
  } else {
    st.plain = b.records;
  }
  st.plain_views.clear();
  for (const auto& piece : st.plain) st.plain_views.push_back(piece.bytes);
  return check_batch_records(b, st.plain_views, st.records);
}

// How many entries ahead store_and_apply gives the state machine a prefetch hint.
constexpr size_t prefetch_distance = 4;

// Writes the whole transactions records[from..] to the replica's WAL as
// they are (one write), skipping what the WAL already holds, then applies
// each to the state machine beyond its applied sequence. Each sink takes a
// transaction only past its own position: exactly once for each.
status store_and_apply(applier_state& st, const std::vector<wal::record_view>& records,
                       size_t from) {
  assert(from < records.size() && records.back().commit());
  uint64_t first = records[from].sequence;
  uint64_t last = records.back().sequence;
  auto& log = *st.cfg.log;
  if (last > log.last_sequence()) {
    uint64_t held = log.last_sequence() >= first ? log.last_sequence() - first + 1 : 0;
    if (first + held != log.last_sequence() + 1 || (held > 0 && !records[from + held - 1].commit()))
      return status{errc::sequence_gap,
                    "replica WAL ends at " + std::to_string(log.last_sequence()) +
                        " but the transaction to store starts at " + std::to_string(first + held)};
    // The records as they came, in runs that are contiguous in memory.
    st.pieces.clear();
    for (size_t i = from + held; i < records.size(); ++i) {
      auto encoded = records[i].encoded();
      if (!st.pieces.empty() && st.pieces.back().data() + st.pieces.back().size() == encoded.data())
        st.pieces.back() = {st.pieces.back().data(), st.pieces.back().size() + encoded.size()};
      else
        st.pieces.push_back(encoded);
    }
    auto appended =
        log.append_encoded(st.pieces.data(), st.pieces.size(), records.size() - from - held);
    if (!appended) return appended.error();
  }
  auto& tx = st.tx;
  tx.first_sequence = first;
  tx.entries.clear();
  for (size_t i = from; i < records.size(); ++i) {
    if (i + prefetch_distance < records.size())
      st.cfg.machine->prefetch(records[i + prefetch_distance].payload);
    tx.entries.push_back(records[i].payload);
    if (!records[i].commit()) continue;
    if (tx.last_sequence() > st.cfg.machine->applied_sequence())
      if (auto applied = st.cfg.machine->apply(tx); !applied.ok()) return applied;
    tx.first_sequence = tx.last_sequence() + 1;
    tx.entries.clear();
  }
  st.received = last;
  return status{};
}

// Applies a verified batch; `skip` leading entries were received before.
status apply_batch(applier_state& st, const batch& b, uint64_t skip) {
  if (b.part != fragment::none) {
    auto& pending = st.pending;
    if (b.part == fragment::first) pending.clear();
    pending.buffers.insert(pending.buffers.end(), st.plain.begin(), st.plain.end());
    pending.records.insert(pending.records.end(), st.records.begin(), st.records.end());
    pending.bytes += b.uncompressed_size;
    if (pending.bytes > st.cfg.max_transaction_bytes)
      return status{errc::size_limit_exceeded,
                    "transaction at " + std::to_string(pending.first_sequence()) + " exceeds " +
                        std::to_string(st.cfg.max_transaction_bytes) + " bytes"};
    if (b.part != fragment::last) return status{};
    auto result = store_and_apply(st, pending.records, 0);
    pending.clear();
    return result;
  }
  if (skip >= st.records.size()) return status{};
  return store_and_apply(st, st.records, skip);
}

void update_rate(applier_state& st) {
  auto now = std::chrono::steady_clock::now();
  auto elapsed = std::chrono::duration<double>(now - st.rate_since).count();
  if (elapsed < 1.0) return;
  auto applied = st.cfg.machine->applied_sequence();
  double current = static_cast<double>(applied - std::min(applied, st.rate_base)) / elapsed;
  st.rate = st.rate == 0 ? current : 0.5 * st.rate + 0.5 * current;
  st.rate_base = applied;
  st.rate_since = now;
}

// Starts or ends the current stretch of being behind the primary.
void track_lag(applier_state& st) {
  if (st.cfg.machine->applied_sequence() >= st.primary_sequence)
    st.behind_since_us = 0;
  else if (st.behind_since_us == 0)
    st.behind_since_us = wall_clock_us();
}

void on_batch(self_ptr self, const batch& b) {
  auto& st = self->state;
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  if (sender != st.upstream) {
    st.upstream = sender;
    st.nacked = 0;
  }
  if (st.states->current() == replica_state::connecting) enter(self, replica_state::streaming);
  uint64_t expected = st.received + 1 + st.pending.count();
  bool restart_fragments = st.pending.count() > 0 && b.first_sequence == st.received + 1 &&
                           (b.part == fragment::first || b.part == fragment::none);
  if (b.last_sequence < b.first_sequence) {
    send_nack(self, st.received + 1, status{errc::malformed_frame, "batch ends before it starts"});
    return;
  }
  if (!restart_fragments && b.last_sequence < expected) {  // a duplicate
    send_ack(self);
    return;
  }
  bool continues =
      b.first_sequence == expected &&
      (st.pending.count() > 0) == (b.part == fragment::middle || b.part == fragment::last);
  bool overlaps =
      st.pending.count() == 0 && b.part == fragment::none && b.first_sequence < expected;
  if (!restart_fragments && !continues && !overlaps) {  // a gap, or a lost FIRST
    st.pending.clear();
    send_nack(self, st.received + 1,
              status{errc::sequence_gap, "expected " + std::to_string(st.received + 1) + ", got " +
                                             std::to_string(b.first_sequence)});
    return;
  }
  enter(self, replica_state::applying);
  auto outcome = verify(st, b);
  if (outcome.ok()) outcome = apply_batch(st, b, overlaps ? expected - b.first_sequence : 0);
  if (!outcome.ok()) {
    // A bad batch is sent again; a local failure (disk, state machine) stops us.
    auto code = outcome.code();
    bool remote = code == errc::checksum_mismatch || code == errc::malformed_frame ||
                  code == errc::decompression_failed || code == errc::size_limit_exceeded ||
                  code == errc::unsupported_codec;
    if (!remote) {
      st.last_error = outcome.to_string();
      enter(self, replica_state::error);
      self->quit(to_error(outcome));
      return;
    }
    st.pending.clear();
    enter(self, replica_state::acknowledging);  // a nack is an answer too
    send_nack(self, st.received + 1, outcome);
    enter(self, replica_state::waiting_for_data);
    return;
  }
  st.nacked = 0;
  st.primary_sequence = std::max(st.primary_sequence, b.last_sequence);
  update_rate(st);
  track_lag(st);
  enter(self, replica_state::syncing);
  enter(self, replica_state::acknowledging);
  send_ack(self);
  // More is known to exist on the primary: streaming; else waiting.
  enter(self, st.received < st.primary_sequence ? replica_state::streaming
                                                : replica_state::waiting_for_data);
}

void drop_snapshot(applier_state& st) {
  if (!st.receiving_snapshot) return;
  st.receiving_snapshot = false;
  st.cfg.snapshots->abort();
}

void on_snapshot(self_ptr self, snapshot_piece& piece) {
  auto& st = self->state;
  st.upstream = caf::actor_cast<caf::actor>(self->current_sender());
  auto local_failure = [&](status why) {
    st.last_error = "snapshot " + std::to_string(piece.sequence) + ": " + why.to_string();
    drop_snapshot(st);
    enter(self, replica_state::error);
    self->quit(to_error(why));
  };
  switch (piece.step) {
    case snapshot_piece::begin: {
      if (!st.cfg.snapshots) {
        // Refused through the transport, which ends the link with it.
        st.nacked = 0;
        send_nack(self, st.received + 1,
                  status{errc::not_retained, "the primary no longer retains sequence " +
                                                 std::to_string(st.received + 1) +
                                                 " and this replica cannot take a snapshot"});
        return;
      }
      drop_snapshot(st);
      st.pending.clear();
      if (st.states->current() != replica_state::bootstrapping)
        enter(self, replica_state::bootstrapping);
      if (auto begun = st.cfg.snapshots->begin(piece.sequence, piece.total_bytes); !begun.ok())
        return local_failure(begun);
      st.receiving_snapshot = true;
      st.snapshot.sequence = piece.sequence;
      st.snapshot.total_bytes = piece.total_bytes;
      st.snapshot.received_bytes = 0;
      return;
    }
    case snapshot_piece::chunk: {
      if (!st.receiving_snapshot) return;  // the transport checks the order
      if (auto written = st.cfg.snapshots->write(piece.offset, piece.data); !written.ok())
        return local_failure(written);
      st.snapshot.received_bytes += piece.data.size();
      send_ack(self);  // sequences unchanged: credit for the next chunk
      return;
    }
    default: {
      if (!st.receiving_snapshot) return;
      st.receiving_snapshot = false;
      // The state first, then the WAL: a crash in between restarts with a
      // machine ahead of its WAL, which the start-up repairs (see below).
      if (auto installed = st.cfg.snapshots->install(); !installed.ok())
        return local_failure(installed);
      if (auto skipped = st.cfg.log->skip_to(piece.sequence + 1); !skipped.ok())
        return local_failure(skipped);
      st.received = piece.sequence;
      st.nacked = 0;
      ++st.snapshot.installed;
      st.primary_sequence = std::max(st.primary_sequence, piece.sequence);
      send_ack(self);
      enter(self, st.received < st.primary_sequence ? replica_state::streaming
                                                    : replica_state::waiting_for_data);
      return;
    }
  }
}

replica_status make_status(const applier_state& st) {
  replica_status out;
  out.replica_id = st.cfg.replica_id;
  out.state = st.states->current();
  auto a = current_ack(st);
  out.received_sequence = a.received_sequence;
  out.durable_sequence = a.durable_sequence;
  out.applied_sequence = a.applied_sequence;
  out.primary_sequence = std::max(st.primary_sequence, a.received_sequence);
  out.transitions.assign(st.states->history().begin(), st.states->history().end());
  out.last_error = st.last_error;
  out.entries_remaining =
      out.primary_sequence > a.applied_sequence ? out.primary_sequence - a.applied_sequence : 0;
  out.apply_rate = static_cast<uint64_t>(st.rate);
  out.link_down_since_us = st.link_down_since_us;
  out.link_reconnects = st.link_reconnects;
  if (st.behind_since_us != 0 && out.entries_remaining > 0) {
    auto now = wall_clock_us();
    out.lag_ms = now > st.behind_since_us ? (now - st.behind_since_us) / 1000 : 0;
  }
  out.snapshot = st.snapshot;
  return out;
}

// The transport's news: the link is up (with the primary's newest sequence)
// or down.
void on_link(self_ptr self, bool up, uint64_t primary_sequence) {
  auto& s = self->state;
  s.primary_sequence = std::max(s.primary_sequence, primary_sequence);
  track_lag(s);
  auto now = s.states->current();
  if (!up) {
    s.link_up = false;
    if (s.link_down_since_us == 0) s.link_down_since_us = wall_clock_us();
    s.pending.clear();
    drop_snapshot(s);
    enter(self, replica_state::connecting);
    return;
  }
  // A new link, or news of the primary's progress (a heartbeat).
  if (!s.link_up) {
    if (s.link_was_up) ++s.link_reconnects;
    s.link_up = s.link_was_up = true;
  }
  s.link_down_since_us = 0;
  if (now == replica_state::error) enter(self, replica_state::connecting);
  if (now == replica_state::error || now == replica_state::connecting)
    enter(self, replica_state::streaming);
  bool behind = s.received < s.primary_sequence;
  auto cur = s.states->current();
  if (cur == replica_state::streaming && !behind)
    enter(self, replica_state::waiting_for_data);
  else if (cur == replica_state::waiting_for_data && behind)
    enter(self, replica_state::streaming);
}

applier_actor::behavior_type applier(self_ptr self, applier_config cfg) {
  assert(cfg.log && cfg.machine && cfg.watch);
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.states = std::make_unique<replica_state_machine>(wall_clock_us());
  // A failed replay quits; the behaviour below is then never used.
  // A WAL that failed (an fsync error: what it holds beyond its durable
  // sequence may not be on disk) cannot be trusted by a new applier: quit
  // with its failure, so the host reopens it (recovery) instead of this
  // applier applying entries that were never durable.
  if (auto health = st.cfg.log->health(); !health.ok()) self->quit(to_error(health));
  // A snapshot was installed but the WAL not yet restarted after it.
  if (auto applied = st.cfg.machine->applied_sequence(); applied > st.cfg.log->last_sequence())
    if (auto skipped = st.cfg.log->skip_to(applied + 1); !skipped.ok())
      self->quit(to_error(skipped));
  if (auto replayed = replay(*st.cfg.log, *st.cfg.machine); !replayed.ok())
    self->quit(to_error(replayed));
  st.received = std::max(st.cfg.log->durable_sequence(), st.cfg.machine->applied_sequence());
  st.subscription = st.cfg.watch->subscribe(caf::actor_cast<caf::actor>(self));
  return {
      [self](const batch& b) { on_batch(self, b); },
      [self](snapshot_piece& piece) { on_snapshot(self, piece); },
      [self](status_atom) { return make_status(self->state); },
      [self](connected_atom, bool up, uint64_t primary_sequence) {
        on_link(self, up, primary_sequence);
      },
      [self](connected_atom, bool up, uint64_t primary_sequence, std::string& why) {
        self->state.last_error = "link to the primary: " + why;
        on_link(self, up, primary_sequence);
      },
      [self](wake_atom, uint64_t durable) {
        self->state.subscription->arm();
        if (durable > self->state.acked_durable) send_ack(self);
      },
  };
}

}  // namespace

status replay(wal::log& log, state_machine& machine) {
  auto from = machine.applied_sequence() + 1;
  if (from > log.durable_sequence()) return status{};
  auto cursor = log.read_from(from);
  if (!cursor) return cursor.error();
  std::vector<wal::record_view> records;
  std::vector<std::string> copies;  // a transaction may span cursor reads
  transaction tx;
  tx.first_sequence = from;
  for (;;) {
    if (auto read = cursor->read(records); !read.ok()) return read;
    if (records.empty()) break;
    for (auto& r : records) {
      copies.emplace_back(r.payload);
      if (!r.commit()) continue;
      tx.entries.assign(copies.begin(), copies.end());
      if (auto applied = machine.apply(tx); !applied.ok()) return applied;
      tx.first_sequence += copies.size();
      copies.clear();
    }
  }
  return status{};
}

applier_actor spawn_applier(caf::actor_system& sys, applier_config cfg) {
  return sys.spawn(applier, std::move(cfg));
}

}  // namespace walrus
