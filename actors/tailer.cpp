#include "actors/tailer.hpp"

#include <algorithm>
#include <cassert>
#include <optional>

#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "codec/entries.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct tailer_state {
  tailer_config cfg;
  std::optional<wal::cursor> cursor;  // set by the first rewind
  batcher_actor downstream;           // who granted the credit
  uint64_t credit = 0;                // entry bytes the downstream will take
  uint64_t rewinds = 0;               // rewinds from the current downstream
  std::unique_ptr<durable_watch::subscription> subscription;
  std::vector<wal::record_view> records;
  double average_entry_bytes = 128;        // sizes cursor reads so blocks end near their target
  double average_transaction_bytes = 128;  // sizes blocks' buffers
  size_t open_transaction_bytes = 0;       // of the transaction read so far
  static inline const char* name = "walrus.tailer";
};

using self_ptr = tailer_actor::stateful_pointer<tailer_state>;

// Reads one block of at most about `target` bytes, ending at a transaction
// boundary unless one transaction alone passes `hard_limit`. Sets `dry` when
// the cursor had nothing more.
status read_block(tailer_state& st, size_t target, size_t hard_limit, entry_block& block,
                  bool& dry) {
  auto& cursor = *st.cursor;
  block.first_sequence = cursor.next_sequence();
  codec::entries_writer writer{block.entries, block.commit_flags};
  // One allocation for the usual block, which ends at the first transaction
  // boundary past `target`: growing by doubling would copy the bytes again
  // and touch fresh pages each time (16 KiB entries: a fifth of the CPU).
  block.entries.reserve(
      std::min(hard_limit, target + 2 * static_cast<size_t>(st.average_transaction_bytes) + 64));
  bool at_boundary = true;
  while (block.entries.size() < hard_limit) {
    size_t want = 1;
    if (block.entries.size() < target) {
      auto remaining = static_cast<double>(target - block.entries.size());
      want =
          std::clamp<size_t>(static_cast<size_t>(remaining / st.average_entry_bytes) + 1, 1, 1024);
    } else if (at_boundary) {
      break;
    }
    if (auto read = cursor.read(st.records, want); !read.ok()) return read;
    if (st.records.empty()) {
      dry = true;
      break;
    }
    size_t bytes = 0;
    for (auto& r : st.records) {
      writer.add(r.payload, r.commit());
      bytes += r.payload.size();
      st.open_transaction_bytes += r.payload.size() + 5;  // + its length, at most 5 bytes
      at_boundary = r.commit();
      if (at_boundary) {
        st.average_transaction_bytes = 0.8 * st.average_transaction_bytes +
                                       0.2 * static_cast<double>(st.open_transaction_bytes);
        st.open_transaction_bytes = 0;
      }
    }
    st.average_entry_bytes =
        0.8 * st.average_entry_bytes +
        0.2 * std::max(1.0, static_cast<double>(bytes) / static_cast<double>(st.records.size()));
  }
  block.last_sequence = block.first_sequence + writer.count() - 1;
  return status{};
}

// Sends blocks while credit lasts; when the log runs dry, waits for a wake.
void pump(self_ptr self) {
  auto& st = self->state;
  if (!st.cursor || !st.downstream) return;
  while (st.credit > 0) {
    entry_block block;
    bool dry = false;
    auto target = std::min<size_t>(st.credit, st.cfg.max_block_bytes);
    if (auto read = read_block(st, target, target + st.cfg.max_block_bytes, block, dry);
        !read.ok()) {
      self->quit(to_error(read));
      return;
    }
    if (block.entries.empty()) {
      // Nothing now: arm, then look again, so an append between the two is
      // either seen here or wakes us.
      st.subscription->arm();
      if (st.cfg.log->durable_sequence() >= st.cursor->next_sequence()) continue;
      // An empty block tells a batcher with linger 0 to seal what it holds.
      block.first_sequence = 0;
      block.caught_up = true;
      self->send(st.downstream, std::move(block));
      return;
    }
    block.caught_up = dry;
    st.credit -= std::min<uint64_t>(st.credit, block.entries.size());
    self->send(st.downstream, std::move(block));
    if (dry) {
      st.subscription->arm();
      if (st.cfg.log->durable_sequence() < st.cursor->next_sequence()) return;
    }
  }
}

tailer_actor::behavior_type tailer(self_ptr self, tailer_config cfg) {
  assert(cfg.log && cfg.watch && cfg.max_block_bytes > 0);
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.subscription = st.cfg.watch->subscribe(caf::actor_cast<caf::actor>(self));
  return {
      [self](wake_atom, uint64_t) { pump(self); },
      [self](demand_atom, uint64_t bytes) {
        auto& s = self->state;
        auto sender = caf::actor_cast<batcher_actor>(self->current_sender());
        if (sender != s.downstream) s.rewinds = 0;  // a new batcher counts from 1
        s.downstream = sender;
        s.credit += bytes;
        pump(self);
      },
      [self](rewind_atom, uint64_t from) {
        auto& s = self->state;
        auto sender = caf::actor_cast<batcher_actor>(self->current_sender());
        if (sender != s.downstream) s.rewinds = 0;  // a new batcher counts from 1
        s.downstream = sender;
        s.credit = 0;
        auto cursor = s.cfg.log->read_from(from);
        if (!cursor) {
          // Typically errc::not_retained: the replica must bootstrap.
          self->quit(to_error(cursor.error()));
          return;
        }
        s.cursor.emplace(std::move(*cursor));
        // The rewind marker: what follows answers this rewind. Blocks sent
        // before it may start at `from` too, so their first sequence alone
        // cannot tell the batcher they are stale.
        entry_block marker;
        marker.last_sequence = ++s.rewinds;
        marker.caught_up = false;
        self->send(s.downstream, std::move(marker));
      },
  };
}

}  // namespace

tailer_actor spawn_tailer(caf::actor_system& sys, tailer_config cfg) {
  return sys.spawn(tailer, std::move(cfg));
}

}  // namespace walrus
