#include "actors/ack_tracker.hpp"

#include "base/clock.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "actors/retention_slots.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct replica_slot {
  replica_info info;
  bool attached = false;
  bool lost = false;
};

// The primary's log at one durable advance.
struct durable_sample {
  uint64_t sequence;
  caf::actor_clock::time_point at;
  uint64_t bytes;  // log bytes written by then (about those through `sequence`)
};

// Waits are indexed so that neither an ack nor a timeout looks at waits it
// does not settle (a WAIT per write under load leaves thousands pending):
// waits of one level and replica count settle in sequence order, since the
// replicas at or past a sequence only get fewer as the sequence grows.
using wait_group = std::pair<ack_level, uint32_t>;
using time_point = caf::actor_clock::time_point;

struct pending_wait {
  wait_request request;
  caf::typed_response_promise<uint32_t> promise;
  std::multimap<uint64_t, uint64_t>::iterator in_group;        // sequence -> id
  std::multimap<time_point, uint64_t>::iterator in_deadlines;  // deadline -> id
};

struct tracker_state {
  ack_tracker_config cfg;
  std::map<std::string, replica_slot> replicas;
  std::deque<durable_sample> samples;
  std::map<uint64_t, pending_wait> waits;  // by id
  std::map<wait_group, std::multimap<uint64_t, uint64_t>> wait_groups;
  std::multimap<time_point, uint64_t> deadlines;
  std::optional<time_point> timer_at;  // the earliest timeout message on its way
  uint64_t next_wait_id = 1;
  std::unique_ptr<durable_watch::subscription> subscription;
  std::string slots_path;     // empty: slots are not persisted
  bool slots_loaded = false;  // the file was read (or found missing)
  retention_slots saved;      // what the slots file holds
  static inline const char* name = "walrus.ack_tracker";
};

using self_ptr = ack_tracker_actor::stateful_pointer<tracker_state>;

uint64_t position(const replica_info& r, ack_level level) {
  switch (level) {
    case ack_level::received: return r.received_sequence;
    case ack_level::durable: return r.durable_sequence;
    case ack_level::applied: return r.applied_sequence;
  }
  return 0;
}

uint32_t count_reached(const tracker_state& st, const wait_request& w) {
  uint32_t n = 0;
  for (auto& [id, slot] : st.replicas)
    if (!slot.lost && position(slot.info, w.level) >= w.sequence) ++n;
  return n;
}

// Answers wait `id` and forgets it.
template <class Answer>
void finish_wait(tracker_state& st, std::map<uint64_t, pending_wait>::iterator i, Answer&& answer) {
  auto group = st.wait_groups.find({i->second.request.level, i->second.request.replicas});
  group->second.erase(i->second.in_group);
  if (group->second.empty()) st.wait_groups.erase(group);
  st.deadlines.erase(i->second.in_deadlines);
  auto promise = std::move(i->second.promise);
  st.waits.erase(i);
  promise.deliver(std::forward<Answer>(answer));
}

void settle_waits(self_ptr self) {
  auto& st = self->state;
  std::vector<uint64_t> positions;
  for (auto g = st.wait_groups.begin(); g != st.wait_groups.end();) {
    auto [level, wanted] = g->first;
    positions.clear();
    for (auto& [id, slot] : st.replicas)
      if (!slot.lost) positions.push_back(position(slot.info, level));
    if (wanted == 0 || positions.size() < wanted) {
      ++g;
      continue;
    }
    // Every wait up to the `wanted`-th highest position is reached.
    std::nth_element(positions.begin(), positions.begin() + (wanted - 1), positions.end(),
                     std::greater<>{});
    auto reached_through = positions[wanted - 1];
    auto next = std::next(g);
    auto& by_sequence = g->second;  // erased with its last wait
    while (true) {
      auto first = by_sequence.begin();
      if (first->first > reached_through) break;
      auto i = st.waits.find(first->second);
      bool last = by_sequence.size() == 1;
      finish_wait(st, i, count_reached(st, i->second.request));
      if (last) break;
    }
    g = next;
  }
}

// One timeout message at a time, for the earliest deadline.
void arm_wait_timer(self_ptr self) {
  auto& st = self->state;
  if (st.deadlines.empty()) return;
  auto next = st.deadlines.begin()->first;
  if (st.timer_at && *st.timer_at <= next) return;
  st.timer_at = next;
  auto now = self->clock().now();
  self->delayed_send(self, next > now ? next - now : caf::timespan{0}, caf::timeout_atom_v,
                     uint64_t{0});
}

void expire_waits(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (st.timer_at && *st.timer_at <= now) st.timer_at.reset();
  while (!st.deadlines.empty() && st.deadlines.begin()->first <= now) {
    auto i = st.waits.find(st.deadlines.begin()->second);
    auto& w = i->second.request;
    auto error = make_error(
        errc::timeout,
        std::to_string(count_reached(st, w)) + " of " + std::to_string(w.replicas) +
            " replicas reached sequence " + std::to_string(w.sequence) + " (" + to_string(w.level) +
            ") within " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(w.timeout).count()) +
            " ms");
    finish_wait(st, i, std::move(error));
  }
  arm_wait_timer(self);
}

void record_sample(tracker_state& st, uint64_t durable, caf::actor_clock::time_point now) {
  if (!st.samples.empty() && st.samples.back().sequence >= durable) return;
  st.samples.push_back(durable_sample{durable, now, st.cfg.log->stats().bytes_written});
  while (st.samples.size() > st.cfg.sample_limit) st.samples.pop_front();
}

// Fills the lag fields of `r` against the primary's `durable` sequence.
void compute_lag(const tracker_state& st, uint64_t durable, caf::actor_clock::time_point now,
                 replica_info& r) {
  r.lag_entries = durable > r.applied_sequence ? durable - r.applied_sequence : 0;
  r.lag_bytes = 0;
  r.lag_ms = 0;
  if (r.lag_entries == 0) return;
  // The first sample past what the replica applied: when that entry became
  // durable, and the log bytes up to the replica's position.
  auto next =
      std::upper_bound(st.samples.begin(), st.samples.end(), r.applied_sequence,
                       [](uint64_t seq, const durable_sample& s) { return seq < s.sequence; });
  if (next != st.samples.end())
    r.lag_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - next->at).count());
  // Bytes: from the last sample the replica has applied to now.
  auto total = st.cfg.log->stats().bytes_written;
  uint64_t at_applied = 0;
  if (next != st.samples.begin())
    at_applied = std::prev(next)->bytes;
  else if (!st.samples.empty())
    at_applied = st.samples.front().bytes;
  r.lag_bytes = total > at_applied ? total - at_applied : 0;
}

primary_status make_status(self_ptr self) {
  auto& st = self->state;
  primary_status out;
  out.first_retained = st.cfg.log->first_sequence();
  out.last_sequence = st.cfg.log->last_sequence();
  out.durable_sequence = st.cfg.log->durable_sequence();
  auto now = self->clock().now();
  for (auto& [id, slot] : st.replicas) {
    auto info = slot.info;
    compute_lag(st, out.durable_sequence, now, info);
    out.replicas.push_back(std::move(info));
  }
  return out;
}

wal::file_system& fs_of(const wal::log& log) {
  return log.config().fs != nullptr ? *log.config().fs : wal::posix_file_system();
}

// Writes the slots file when the replicas or their positions changed; true
// when the file holds them. A failed write leaves the older file and is tried
// again at the next round; until then retention drops nothing. Lost replicas
// stay in it: one that catches up after all must not be missing from the
// file when the tracker restarts (a new tracker marks them lost again if they
// still are).
bool save_slots(tracker_state& st) {
  if (st.slots_path.empty()) return true;
  if (!st.slots_loaded) return false;  // would forget what the file holds
  retention_slots now;
  for (auto& [id, slot] : st.replicas) now[id] = slot.info.durable_sequence;
  if (now == st.saved) return true;
  if (!save_retention_slots(fs_of(*st.cfg.log), st.slots_path, now).ok()) return false;
  st.saved = std::move(now);
  return true;
}

// A new tracker knows the replicas its predecessors knew, as detached ones.
// While the file cannot be read (an I/O error) retention drops nothing; a
// file that does not parse is reported and replaced.
void load_slots(tracker_state& st) {
  if (st.slots_path.empty() || st.slots_loaded) return;
  auto loaded = load_retention_slots(fs_of(*st.cfg.log), st.slots_path);
  if (!loaded) {
    if (loaded.error().code() != errc::corruption) return;  // tried again each round
    std::fprintf(stderr, "walrus: replacing unreadable retention slots: %s\n",
                 loaded.error().to_string().c_str());
    loaded = retention_slots{};
  }
  st.slots_loaded = true;
  auto now = wall_clock_us();
  for (auto& [id, durable] : *loaded) {
    if (st.replicas.count(id) != 0) continue;  // attached meanwhile: it knows better
    auto& slot = st.replicas[id];
    slot.info.replica_id = id;
    slot.info.link = "down";
    slot.info.link_down_since_us = now;
    slot.info.received_sequence = slot.info.durable_sequence = slot.info.applied_sequence = durable;
  }
  st.saved = std::move(*loaded);
}

void retention_round(self_ptr self) {
  auto& st = self->state;
  auto& log = *st.cfg.log;
  // Nothing is dropped before the slots file holds every replica known: a
  // successor would not know what they need.
  load_slots(st);
  if (!save_slots(st)) {
    self->delayed_send(self, st.cfg.retention_interval, caf::tick_atom_v);
    return;
  }
  uint64_t needed = log.durable_sequence() + 1;
  for (auto& [id, slot] : st.replicas)
    if (!slot.lost) needed = std::min(needed, slot.info.durable_sequence + 1);
  auto dropped = log.drop_before(needed);
  auto capped = log.enforce_retention();
  // A failed round changes nothing and is tried again at the next tick.
  (void)dropped;
  (void)capped;
  auto first = log.first_sequence();
  for (auto& [id, slot] : st.replicas) {
    if (slot.lost || slot.info.durable_sequence + 1 >= first) continue;
    slot.lost = true;
    slot.info.link = "lost";
  }
  self->delayed_send(self, st.cfg.retention_interval, caf::tick_atom_v);
}

ack_tracker_actor::behavior_type ack_tracker(self_ptr self, ack_tracker_config cfg) {
  assert(cfg.log && cfg.watch);
  self->state.cfg = std::move(cfg);
  auto& st = self->state;
  st.subscription = st.cfg.watch->subscribe(caf::actor_cast<caf::actor>(self));
  if (st.cfg.persist_slots) st.slots_path = retention_slots_path(st.cfg.log->config().dir);
  load_slots(st);
  record_sample(st, st.cfg.log->durable_sequence(), self->clock().now());
  self->delayed_send(self, st.cfg.retention_interval, caf::tick_atom_v);
  return {
      [self](attach_atom, const std::string& replica, uint64_t start) {
        auto& slot = self->state.replicas[replica];
        slot.info.replica_id = replica;
        slot.info.link = "streaming";
        slot.info.link_down_since_us = 0;
        slot.attached = true;
        slot.lost = false;
        // The replica holds everything before `start` durably.
        auto& r = slot.info;
        r.received_sequence = std::max(r.received_sequence, start - 1);
        r.durable_sequence = std::max(r.durable_sequence, start - 1);
        r.applied_sequence = std::max(r.applied_sequence, start - 1);
        // A replica the slots file does not hold yet is written at once: a
        // successor must not drop what it needs before the next round.
        if (self->state.saved.count(replica) == 0) save_slots(self->state);
        settle_waits(self);
      },
      [self](detach_atom, const std::string& replica) {
        auto i = self->state.replicas.find(replica);
        if (i == self->state.replicas.end() || !i->second.attached) return;
        i->second.attached = false;
        i->second.info.in_flight_bytes = 0;
        if (!i->second.lost) i->second.info.link = "down";
        i->second.info.link_down_since_us = wall_clock_us();
      },
      [self](ack_atom, const std::string& replica, const ack& a, uint64_t in_flight,
             uint64_t batches, uint64_t bytes, uint64_t wire_bytes) {
        auto& slot = self->state.replicas[replica];
        auto& r = slot.info;
        r.replica_id = replica;
        r.received_sequence = std::max(r.received_sequence, a.received_sequence);
        r.durable_sequence = std::max(r.durable_sequence, a.durable_sequence);
        r.applied_sequence = std::max(r.applied_sequence, a.applied_sequence);
        r.in_flight_bytes = in_flight;
        r.batches_sent += batches;
        r.batch_bytes += bytes;
        r.batch_wire_bytes +=
            wire_bytes;  // Marked lost while behind the first retained sequence, but its
        // session had already read what was dropped: it is not lost after all.
        if (slot.lost && r.durable_sequence + 1 >= self->state.cfg.log->first_sequence()) {
          slot.lost = false;
          r.link = slot.attached ? "streaming" : "down";
        }
        settle_waits(self);
      },
      [self](wake_atom, uint64_t durable) {
        self->state.subscription->arm();
        record_sample(self->state, std::max(durable, self->state.cfg.log->durable_sequence()),
                      self->clock().now());
      },
      [self](wait_atom, const wait_request& w) -> caf::result<uint32_t> {
        auto& st = self->state;
        auto reached = count_reached(st, w);
        if (reached >= w.replicas) return reached;
        auto id = st.next_wait_id++;
        auto promise = self->make_response_promise<uint32_t>();
        auto& group = st.wait_groups[{w.level, w.replicas}];
        st.waits.emplace(id,
                         pending_wait{w, promise, group.emplace(w.sequence, id),
                                      st.deadlines.emplace(self->clock().now() + w.timeout, id)});
        arm_wait_timer(self);
        return promise;
      },
      [self](status_atom) { return make_status(self); },
      [self](caf::timeout_atom, uint64_t) { expire_waits(self); },
      [self](caf::tick_atom) { retention_round(self); },
  };
}

}  // namespace

ack_tracker_actor spawn_ack_tracker(caf::actor_system& sys, ack_tracker_config cfg) {
  return sys.spawn(ack_tracker, std::move(cfg));
}

}  // namespace walrus
