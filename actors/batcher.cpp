#include "actors/batcher.hpp"

#include "base/clock.hpp"

#include <algorithm>
#include <cassert>
#include <deque>
#include <utility>

#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"
#include "wal/format.hpp"

namespace walrus {
namespace {

struct in_flight {
  uint64_t last_sequence;
  size_t bytes;  // uncompressed
  bool partial;  // sealed before it was full
};

// Records received from the tailer and not yet sealed, as the blocks'
// slices (or what is left of one after a seal).
struct open_batch {
  uint64_t first_sequence = 0;
  uint64_t count = 0;
  size_t bytes = 0;
  std::vector<entry_block> pieces;

  bool empty() const { return count == 0; }

  // Where a batch may end: after `count` records, `bytes` bytes.
  struct cut {
    uint64_t count = 0;  // 0: nowhere
    size_t bytes = 0;
  };
  // After the last record that ends a transaction.
  cut complete_prefix() const {
    size_t before = bytes;
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
      before -= it->records.size();
      if (it->last_commit != 0)
        return {it->last_commit - first_sequence + 1, before + it->last_commit_end};
    }
    return {};
  }
  // After the first record that ends a transaction.
  cut first_commit() const {
    size_t before = 0;
    for (const auto& piece : pieces) {
      if (piece.first_commit != 0)
        return {piece.first_commit - first_sequence + 1, before + piece.first_commit_end};
      before += piece.records.size();
    }
    return {};
  }
  cut all() const { return {count, bytes}; }
};

// The part of `piece` after its first `bytes` bytes, with its transaction
// ends found again (the headers are walked: this happens only when a batch
// ends inside a block).
entry_block rest_of(const entry_block& piece, size_t bytes, uint64_t count) {
  entry_block rest;
  rest.first_sequence = piece.first_sequence + count;
  rest.last_sequence = piece.last_sequence;
  rest.records = piece.records.slice(bytes, piece.records.size() - bytes);
  std::string_view left = rest.records.bytes;
  for (size_t at = 0; at < left.size();) {
    const char* header = left.data() + at;
    auto length = wal::get_le<uint32_t>(header + 4);
    bool commit = (static_cast<uint8_t>(header[8]) & wal::flag_commit) != 0;
    auto sequence = wal::get_le<uint64_t>(header + 9);
    at += wal::encoded_record_bytes(length);
    if (!commit) continue;
    if (rest.first_commit == 0) {
      rest.first_commit = sequence;
      rest.first_commit_end = static_cast<uint32_t>(at);
    }
    rest.last_commit = sequence;
    rest.last_commit_end = static_cast<uint32_t>(at);
  }
  return rest;
}

struct batcher_state {
  batcher_config cfg;
  tailer_actor tailer;
  batch_sink_actor sink;
  primary_actor primary;
  std::unique_ptr<codec::block_codec> codec;
  bool ready = false;          // the resume position is known
  uint64_t next_sequence = 0;  // first sequence of the next expected entry block
  uint64_t rewinds = 0;        // rewinds sent to the tailer
  bool rewinding = false;      // the tailer's marker for the latest rewind is not in yet
  uint64_t acked = 0;          // replica's received sequence
  open_batch open;
  bool fragmenting = false;  // a transaction continues from a sealed fragment
  std::deque<in_flight> flight;
  size_t flight_bytes = 0;
  size_t demanded = 0;       // demand the tailer has not yet filled
  bool tailer_idle = false;  // the last block said the tailer caught up
  uint64_t linger_generation = 0;
  bool linger_armed = false;
  // The linger time of what is open is over, but the window had no room to
  // seal it then: it is sealed as soon as an ack makes room.
  bool linger_due = false;
  uint64_t resend_generation = 0;
  uint64_t progress_at_resend = 0;  // acked when the resend timer was armed
  bool resend_armed = false;
  // The sealed FIRST/MIDDLE fragments of the transaction being fragmented
  // (the newest entries of `flight`). The applier holds them until the LAST
  // one and cannot ack them before, so they do not count against the
  // window: else a transaction larger than the window never passes. They
  // count again once the LAST fragment is sealed.
  size_t fragment_batches = 0;
  size_t fragment_bytes = 0;
  uint64_t acks = 0;            // acks received; progress while fragmenting
  uint64_t acks_at_resend = 0;  // acks when the resend timer was armed
  std::string scratch;
  // Sealed since the last ack report (resends included): batches, their
  // entry bytes and their bytes as sent (after compression).
  uint64_t sealed_batches = 0;
  uint64_t sealed_bytes = 0;
  uint64_t sealed_wire_bytes = 0;
  static inline const char* name = "walrus.batcher";
};

using self_ptr = batcher_actor::stateful_pointer<batcher_state>;

void fail(self_ptr self, const status& st) {
  self->quit(to_error(st));
}

void arm_resend(self_ptr self) {
  auto& st = self->state;
  if (st.resend_armed) return;
  st.resend_armed = true;
  st.progress_at_resend = st.acked;
  st.acks_at_resend = st.acks;
  self->delayed_send(self, st.cfg.resend_timeout, caf::timeout_atom_v, ++st.resend_generation);
}

// Seals the first `at.count` records of the open batch as one batch.
void seal(self_ptr self, open_batch::cut at, fragment part) {
  auto& st = self->state;
  auto& open = st.open;
  assert(at.count > 0 && at.count <= open.count && at.bytes <= open.bytes);
  batch b;
  b.first_sequence = open.first_sequence;
  b.last_sequence = open.first_sequence + at.count - 1;
  b.codec = static_cast<uint8_t>(st.codec->id());
  b.part = part;
  b.uncompressed_size = static_cast<uint32_t>(at.bytes);
  // The pieces through the cut go to the batch (a split one in part); the
  // rest stays open.
  std::vector<entry_block> rest;
  size_t taken = 0;
  for (auto& piece : open.pieces) {
    auto size = piece.records.size();
    if (taken >= at.bytes) {
      rest.push_back(std::move(piece));
    } else if (taken + size <= at.bytes) {
      b.records.push_back(std::move(piece.records));
    } else {
      auto head = at.bytes - taken;
      b.records.push_back(piece.records.slice(0, head));
      rest.push_back(rest_of(piece, head, b.last_sequence + 1 - piece.first_sequence));
    }
    taken += size;
  }
  if (st.codec->id() != codec::codec_id::none) {
    std::string_view plain = b.records.front().bytes;
    if (b.records.size() > 1) {
      st.scratch.clear();
      for (auto& piece : b.records) st.scratch += piece.bytes;
      plain = st.scratch;
    }
    std::string compressed;
    if (auto done = st.codec->compress(plain, compressed); !done.ok()) {
      fail(self, done);
      return;
    }
    b.records = {shared_bytes::adopt(std::move(compressed))};
  }
  b.sent_at_us = wall_clock_us();
  ++st.sealed_batches;
  st.sealed_bytes += at.bytes;
  st.sealed_wire_bytes += b.records_bytes();
  bool partial = at.bytes < st.cfg.max_batch_bytes && at.count < st.cfg.max_batch_entries;
  st.flight.push_back(in_flight{b.last_sequence, at.bytes, partial});
  st.flight_bytes += at.bytes;
  if (part == fragment::first || part == fragment::middle) {
    ++st.fragment_batches;
    st.fragment_bytes += at.bytes;
  } else {
    st.fragment_batches = 0;
    st.fragment_bytes = 0;
  }
  self->send(st.sink, std::move(b));
  open.first_sequence += at.count;
  open.count -= at.count;
  open.bytes -= at.bytes;
  open.pieces = std::move(rest);
  if (open.empty()) st.linger_due = false;
  arm_resend(self);
}

// Whether what is open may be sealed before a batch is full.
// With linger 0, the tailer running dry seals what is open, unless
// max_partial_in_flight such batches are unacked: then the entries wait in
// the open batch for the next ack (Nagle's rule, for batches), so that a
// stream of small appends travels in batches as large as one round trip
// gathers instead of one batch, frame and ack per append.
bool flush_due(const batcher_state& st) {
  if (st.linger_due) return true;
  if (!st.tailer_idle || st.cfg.linger.count() != 0) return false;
  if (st.cfg.max_partial_in_flight == 0) return true;
  auto partial = std::count_if(st.flight.begin(), st.flight.end(),
                               [](const in_flight& f) { return f.partial; });
  return static_cast<size_t>(partial) < st.cfg.max_partial_in_flight;
}

// Seals whatever the rules allow: full batches always, everything complete
// when `flush` (the tailer is caught up or the linger time is over).
void try_seal(self_ptr self, bool flush) {
  auto& st = self->state;
  while (!st.open.empty() && st.flight.size() - st.fragment_batches < st.cfg.window_batches) {
    auto& open = st.open;
    bool full = open.bytes >= st.cfg.max_batch_bytes || open.count >= st.cfg.max_batch_entries;
    if (!full && !flush) return;
    if (st.fragmenting) {
      if (auto at = open.first_commit(); at.count > 0) {
        st.fragmenting = false;
        seal(self, at, fragment::last);
      } else if (full) {
        seal(self, open.all(), fragment::middle);
      } else {
        return;
      }
    } else if (auto at = open.complete_prefix(); at.count > 0) {
      seal(self, at, fragment::none);
    } else if (open.bytes >= st.cfg.max_batch_bytes) {
      st.fragmenting = true;  // one transaction larger than a batch
      seal(self, open.all(), fragment::first);
    } else {
      return;  // an incomplete transaction waits for the rest
    }
    if (self->getf(caf::abstract_actor::is_terminated_flag)) return;
  }
}

void send_demand(self_ptr self) {
  auto& st = self->state;
  assert(st.fragment_bytes <= st.flight_bytes && st.fragment_batches <= st.flight.size());
  size_t used = st.flight_bytes - st.fragment_bytes + st.open.bytes + st.demanded;
  if (used >= st.cfg.window_bytes ||
      st.flight.size() - st.fragment_batches >= st.cfg.window_batches)
    return;
  auto room = st.cfg.window_bytes - used;
  // Avoid a trickle of tiny grants: wait for a useful amount unless idle.
  bool idle = st.flight.empty() && st.open.empty() && st.demanded == 0;
  if (room < st.cfg.max_batch_bytes / 2 && !idle) return;
  st.demanded += room;
  self->send(st.tailer, demand_atom_v, static_cast<uint64_t>(room));
}

// Drops everything after `from - 1` and has the tailer start again there.
void rewind(self_ptr self, uint64_t from) {
  auto& st = self->state;
  st.flight.clear();
  st.flight_bytes = 0;
  st.fragment_batches = 0;
  st.fragment_bytes = 0;
  st.open = open_batch{};
  st.open.first_sequence = from;
  st.fragmenting = false;
  st.next_sequence = from;
  st.demanded = 0;
  st.resend_armed = false;
  st.linger_due = false;
  ++st.rewinds;
  st.rewinding = true;
  self->send(st.tailer, rewind_atom_v, from);
  send_demand(self);
}

void on_block(self_ptr self, entry_block& block) {
  auto& st = self->state;
  if (!st.ready) return;
  if (block.records.empty() && !block.caught_up) {  // the tailer's rewind marker (tailer.hpp)
    if (block.last_sequence == st.rewinds) st.rewinding = false;
    return;
  }
  if (st.rewinding) return;  // read before the tailer saw the latest rewind
  bool caught_up = block.caught_up;
  if (!block.records.empty()) {
    assert(block.first_sequence == st.next_sequence);
    assert(st.open.first_sequence + st.open.count == block.first_sequence);
    st.demanded -= std::min(st.demanded, block.records.size());
    st.open.count += block.last_sequence - block.first_sequence + 1;
    st.open.bytes += block.records.size();
    st.next_sequence = block.last_sequence + 1;
    st.open.pieces.push_back(std::move(block));
  }
  // An empty block only says the tailer ran dry.
  st.tailer_idle = caught_up;
  try_seal(self, flush_due(st));
  if (!st.open.empty() && st.tailer_idle && st.cfg.linger.count() > 0 && !st.linger_armed) {
    st.linger_armed = true;
    self->delayed_send(self, st.cfg.linger, linger_atom_v, ++st.linger_generation);
  }
  send_demand(self);
}

// The replica has received everything through `sequence`.
void release_through(self_ptr self, uint64_t sequence) {
  auto& st = self->state;
  if (sequence > st.acked) st.acked = sequence;
  while (!st.flight.empty() && st.flight.front().last_sequence <= st.acked) {
    st.flight_bytes -= st.flight.front().bytes;
    st.flight.pop_front();
  }
  if (st.flight.size() < st.fragment_batches) {  // fragments are the newest in flight
    st.fragment_batches = st.flight.size();
    st.fragment_bytes = st.flight_bytes;
  }
  if (st.flight.empty()) st.resend_armed = false;
}

void on_ack(self_ptr self, const ack& a) {
  auto& st = self->state;
  ++st.acks;
  release_through(self, a.received_sequence);
  self->send(st.primary, ack_atom_v, st.cfg.replica_id, a, static_cast<uint64_t>(st.flight_bytes),
             std::exchange(st.sealed_batches, 0), std::exchange(st.sealed_bytes, 0),
             std::exchange(st.sealed_wire_bytes, 0));
  try_seal(self, flush_due(st));
  send_demand(self);
}

void on_nack(self_ptr self, const nack& n) {
  auto& st = self->state;
  // The replica expects `from`: it has everything before, and what we sent
  // after is lost or refused. A nack beyond what we sent is stale.
  if (n.from_sequence == 0 || n.from_sequence > st.next_sequence) return;
  release_through(self, n.from_sequence - 1);
  rewind(self, n.from_sequence);
}

// No ack progress for resend_timeout while batches are in flight: they, or
// their acks, were lost. Send again from what the replica has.
void on_resend_timeout(self_ptr self, uint64_t generation) {
  auto& st = self->state;
  if (generation != st.resend_generation || !st.resend_armed) return;
  st.resend_armed = false;
  if (st.flight.empty()) return;
  // While fragmenting, acks do not advance (the applier acks a transaction
  // once whole); that acks still come back is the progress then.
  bool fragments_flow = st.fragment_batches > 0 && st.acks > st.acks_at_resend;
  if (st.acked > st.progress_at_resend || fragments_flow) {
    arm_resend(self);  // progress since: keep waiting
    return;
  }
  rewind(self, st.acked + 1);
}

batcher_actor::behavior_type batcher(self_ptr self, batcher_config cfg, tailer_actor tailer,
                                     batch_sink_actor sink, primary_actor primary) {
  assert(cfg.window_bytes >= 2 * cfg.max_batch_bytes && cfg.window_batches >= 1);
  auto codec = codec::make_codec(cfg.codec);
  auto& st = self->state;
  if (!codec) {
    self->quit(to_error(codec.error()));  // the behaviour below is then never used
  } else {
    st.codec = std::move(*codec);
  }
  st.tailer = std::move(tailer);
  st.sink = std::move(sink);
  st.primary = std::move(primary);
  st.cfg = std::move(cfg);
  // Resume where the replica is known to be; duplicates are dropped by the
  // applier and a gap is answered by a nack, so an old position is safe.
  self->request(st.primary, std::chrono::seconds(5), caf::get_atom_v, st.cfg.replica_id)
      .then(
          [self](uint64_t resume) {
            auto& s = self->state;
            s.ready = true;
            auto from = std::max(resume, s.cfg.start_sequence);
            s.acked = from - 1;
            rewind(self, from);
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
  return {
      [self](entry_block& block) { on_block(self, block); },
      [self](ack_atom, const ack& a) { on_ack(self, a); },
      [self](nack_atom, const nack& n) { on_nack(self, n); },
      [self](caf::timeout_atom, uint64_t generation) { on_resend_timeout(self, generation); },
      [self](linger_atom, uint64_t generation) {
        auto& s = self->state;
        if (generation != s.linger_generation) return;
        s.linger_armed = false;
        s.linger_due = true;
        try_seal(self, true);
        send_demand(self);
      },
  };
}

}  // namespace

batcher_actor spawn_batcher(caf::actor_system& sys, batcher_config cfg, tailer_actor tailer,
                            batch_sink_actor sink, primary_actor primary) {
  return sys.spawn(batcher, std::move(cfg), std::move(tailer), std::move(sink), std::move(primary));
}

}  // namespace walrus
