#include "actors/tailer.hpp"

#include <algorithm>
#include <cassert>
#include <optional>

#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct tailer_state {
  tailer_config cfg;
  std::optional<wal::cursor> cursor;  // set by the first rewind
  batcher_actor downstream;           // who granted the credit
  uint64_t credit = 0;                // record bytes the downstream will take
  uint64_t rewinds = 0;               // rewinds from the current downstream
  std::unique_ptr<durable_watch::subscription> subscription;
  // The last cursor read: records [next_record, records.size()) are not
  // yet in a block; `owner` keeps their bytes.
  std::vector<wal::record_view> records;
  size_t next_record = 0;
  std::shared_ptr<const void> owner;
  double average_record_bytes = 128;  // sizes cursor reads so blocks end near their target
  static inline const char* name = "walrus.tailer";
};

using self_ptr = tailer_actor::stateful_pointer<tailer_state>;

// Reads one block of about `target` bytes of records, ending at a
// transaction boundary unless one transaction alone passes `hard_limit`, or
// where the next record lies in another buffer (a block is one slice of one
// buffer). Sets `dry` when the cursor had nothing more.
status read_block(tailer_state& st, size_t target, size_t hard_limit, entry_block& block,
                  bool& dry) {
  auto& cursor = *st.cursor;
  const char* begin = nullptr;
  const char* end = nullptr;
  std::shared_ptr<const void> owner;  // of the block's bytes
  uint64_t count = 0;
  bool at_boundary = true;
  for (;;) {
    auto bytes = static_cast<size_t>(end - begin);
    if (bytes >= hard_limit || (bytes >= target && at_boundary && count > 0)) break;
    if (st.next_record == st.records.size()) {
      auto remaining = static_cast<double>(target > bytes ? target - bytes : 1);
      auto want =
          std::clamp<size_t>(static_cast<size_t>(remaining / st.average_record_bytes) + 1, 1, 1024);
      if (auto read = cursor.read(st.records, want); !read.ok()) return read;
      st.next_record = 0;
      st.owner = cursor.owner();
      if (st.records.empty()) {
        dry = true;
        break;
      }
      size_t read_bytes = 0;
      for (auto& r : st.records) read_bytes += r.encoded().size();
      st.average_record_bytes =
          0.8 * st.average_record_bytes + 0.2 * static_cast<double>(read_bytes) / st.records.size();
    }
    const auto& r = st.records[st.next_record];
    // Another buffer (even one that happens to start where this one ends):
    // the next block starts there.
    if (count > 0 && (r.frame != end || st.owner != owner)) break;
    uint64_t expected = count > 0 ? block.first_sequence + count : r.sequence;
    if (r.sequence != expected || r.type() != static_cast<uint8_t>(wal::record_type::data))
      return status{errc::corruption,
                    "sequence " + std::to_string(r.sequence) + ": the log holds a record of type " +
                        std::to_string(r.type()) + " that this version cannot replicate"};
    if (count == 0) {
      begin = r.frame;
      owner = st.owner;
      block.first_sequence = r.sequence;
    }
    end = r.frame + r.encoded().size();
    ++count;
    ++st.next_record;
    at_boundary = r.commit();
    if (at_boundary) {
      auto through = static_cast<uint32_t>(end - begin);
      if (block.first_commit == 0) {
        block.first_commit = r.sequence;
        block.first_commit_end = through;
      }
      block.last_commit = r.sequence;
      block.last_commit_end = through;
    }
  }
  if (count == 0) return status{};
  block.last_sequence = block.first_sequence + count - 1;
  block.records =
      shared_bytes{std::move(owner), std::string_view{begin, static_cast<size_t>(end - begin)}};
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
    if (block.records.empty()) {
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
    st.credit -= std::min<uint64_t>(st.credit, block.records.size());
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
        s.records.clear();
        s.next_record = 0;
        s.owner.reset();
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
