#include "actors/batcher.hpp"

#include "base/clock.hpp"

#include <algorithm>
#include <cassert>
#include <deque>
#include <utility>

#include "base/crc32c.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "codec/entries.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct in_flight {
  uint64_t last_sequence;
  size_t bytes;  // uncompressed
  bool partial;  // sealed before it was full
};

// Entries received from the tailer and not yet sealed.
struct open_batch {
  uint64_t first_sequence = 0;
  uint64_t count = 0;
  std::string entries;
  std::string commit_flags;

  bool empty() const { return count == 0; }
  // Index + 1 of the last entry that ends a transaction, 0 if none.
  uint64_t complete_prefix() const {
    for (uint64_t i = count; i > 0; --i)
      if (codec::commit_bit(commit_flags, i - 1)) return i;
    return 0;
  }
  // Index + 1 of the first entry that ends a transaction, 0 if none.
  uint64_t first_commit() const {
    for (uint64_t i = 0; i < count; ++i)
      if (codec::commit_bit(commit_flags, i)) return i + 1;
    return 0;
  }
};

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

// Byte offset of entry `k` in `entries` (the first k entries' size).
size_t offset_of(std::string_view entries, uint64_t k) {
  size_t pos = 0;
  for (uint64_t i = 0; i < k; ++i) {
    uint64_t length = 0;
    int shift = 0;
    uint8_t byte;
    do {
      byte = static_cast<uint8_t>(entries[pos++]);
      length |= static_cast<uint64_t>(byte & 0x7F) << shift;
      shift += 7;
    } while (byte & 0x80);
    pos += length;
  }
  assert(pos <= entries.size());
  return pos;
}

void arm_resend(self_ptr self) {
  auto& st = self->state;
  if (st.resend_armed) return;
  st.resend_armed = true;
  st.progress_at_resend = st.acked;
  st.acks_at_resend = st.acks;
  self->delayed_send(self, st.cfg.resend_timeout, caf::timeout_atom_v, ++st.resend_generation);
}

// Seals the first `k` entries of the open batch as one batch.
void seal(self_ptr self, uint64_t k, fragment part) {
  auto& st = self->state;
  auto& open = st.open;
  assert(k > 0 && k <= open.count);
  auto bytes = k == open.count ? open.entries.size() : offset_of(open.entries, k);
  std::string_view blob{open.entries.data(), bytes};
  batch b;
  b.first_sequence = open.first_sequence;
  b.last_sequence = open.first_sequence + k - 1;
  b.codec = static_cast<uint8_t>(st.codec->id());
  b.part = part;
  b.uncompressed_size = static_cast<uint32_t>(bytes);
  b.crc32c = crc32c::value(blob);
  if (st.codec->id() != codec::codec_id::none) {
    if (auto compressed = st.codec->compress(blob, b.entries); !compressed.ok()) {
      fail(self, compressed);
      return;
    }
  } else if (k == open.count) {
    b.entries = std::move(open.entries);  // uncompressed: hand the bytes over, no copy
  } else {
    b.entries.assign(blob.data(), blob.size());
  }
  b.commit_flags.assign(open.commit_flags.data(), (k + 7) / 8);
  if (k % 8 != 0)
    b.commit_flags.back() = static_cast<char>(b.commit_flags.back() & ((1 << (k % 8)) - 1));
  b.sent_at_us = wall_clock_us();
  ++st.sealed_batches;
  st.sealed_bytes += bytes;
  st.sealed_wire_bytes += b.entries.size();
  bool partial = bytes < st.cfg.max_batch_bytes && k < st.cfg.max_batch_entries;
  st.flight.push_back(in_flight{b.last_sequence, bytes, partial});
  st.flight_bytes += bytes;
  if (part == fragment::first || part == fragment::middle) {
    ++st.fragment_batches;
    st.fragment_bytes += bytes;
  } else {
    st.fragment_batches = 0;
    st.fragment_bytes = 0;
  }
  self->send(st.sink, std::move(b));
  // The rest becomes the new open batch.
  open_batch rest;
  rest.first_sequence = open.first_sequence + k;
  if (k < open.count) {
    rest.entries.assign(open.entries, bytes);
    for (uint64_t i = k; i < open.count; i += 8) {
      uint8_t v = 0;
      for (uint64_t j = 0; j < 8 && i + j < open.count; ++j)
        if (codec::commit_bit(open.commit_flags, i + j)) v |= static_cast<uint8_t>(1u << j);
      rest.commit_flags.push_back(static_cast<char>(v));
    }
    rest.count = open.count - k;
  }
  open = std::move(rest);
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
    bool full =
        open.entries.size() >= st.cfg.max_batch_bytes || open.count >= st.cfg.max_batch_entries;
    if (!full && !flush) return;
    if (st.fragmenting) {
      if (auto k = open.first_commit(); k > 0) {
        st.fragmenting = false;
        seal(self, k, fragment::last);
      } else if (full) {
        seal(self, open.count, fragment::middle);
      } else {
        return;
      }
    } else if (auto k = open.complete_prefix(); k > 0) {
      seal(self, k, fragment::none);
    } else if (open.entries.size() >= st.cfg.max_batch_bytes) {
      st.fragmenting = true;  // one transaction larger than a batch
      seal(self, open.count, fragment::first);
    } else {
      return;  // an incomplete transaction waits for the rest
    }
    if (self->getf(caf::abstract_actor::is_terminated_flag)) return;
  }
}

void send_demand(self_ptr self) {
  auto& st = self->state;
  assert(st.fragment_bytes <= st.flight_bytes && st.fragment_batches <= st.flight.size());
  size_t used = st.flight_bytes - st.fragment_bytes + st.open.entries.size() + st.demanded;
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
  if (block.entries.empty() && !block.caught_up) {  // the tailer's rewind marker (tailer.hpp)
    if (block.last_sequence == st.rewinds) st.rewinding = false;
    return;
  }
  if (st.rewinding) return;  // read before the tailer saw the latest rewind
  if (!block.entries.empty()) {
    assert(block.first_sequence == st.next_sequence);
    auto n = block.last_sequence - block.first_sequence + 1;
    st.demanded -= std::min(st.demanded, block.entries.size());  // before the bytes move
    if (st.open.empty()) {  // take the block's bytes over: no copy
      st.open.first_sequence = block.first_sequence;
      st.open.entries = std::move(block.entries);
      st.open.commit_flags = std::move(block.commit_flags);
    } else {
      assert(st.open.first_sequence + st.open.count == block.first_sequence);
      codec::append_entries(st.open.entries, st.open.commit_flags, st.open.count, block.entries,
                            block.commit_flags, n);
    }
    st.open.count += n;
    st.next_sequence = block.last_sequence + 1;
  }
  // An empty block only says the tailer ran dry.
  st.tailer_idle = block.caught_up;
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
