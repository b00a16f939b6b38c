#include "actors/supervisor.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <deque>
#include <memory>

#include "caf/event_based_actor.hpp"
#include "caf/exit_reason.hpp"
#include "caf/send.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct child_slot {
  child_spec spec;
  caf::actor handle;  // invalid while the child is down
  uint32_t restarts = 0;
  std::string last_failure;
  bool pending = false;   // waits for the backoff timer
  bool finished = false;  // ended and will not be restarted (policy)
};

struct supervisor_state {
  supervisor_config cfg;
  // Shared with the cleanup functor that stops the children if the
  // supervisor itself dies (killed, or an exception).
  std::shared_ptr<std::vector<child_slot>> slots = std::make_shared<std::vector<child_slot>>();
  std::vector<child_slot>& children = *slots;
  std::deque<caf::actor_clock::time_point> recent_restarts;  // within cfg.period
  std::mt19937_64 rng;
  uint64_t timer_generation = 0;
  bool stopping = false;
  static inline const char* name = "walrus.supervisor";
};

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

bool wants_restart(restart_policy policy, const caf::error& reason) {
  switch (policy) {
    case restart_policy::permanent: return true;
    case restart_policy::transient: return reason && reason != caf::exit_reason::normal;
    case restart_policy::temporary: return false;
  }
  return false;
}

std::string describe_exit(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal) return "normal exit";
  return render(reason);
}

// Stops the running children in [first, last) in reverse order. They are
// demonitored first, so their exits do not come back as failures.
void terminate_children(self_ptr self, size_t first, size_t last) {
  auto& children = self->state.children;
  for (size_t i = last; i-- > first;) {
    auto& slot = children[i];
    if (!slot.handle) continue;
    auto handle = std::move(slot.handle);
    slot.handle = caf::actor{};
    self->demonitor(handle);
    self->send_exit(handle, caf::exit_reason::user_shutdown);
  }
}

void on_child_failure(self_ptr self, size_t index, const caf::error& reason);

void start_child(self_ptr self, size_t index) {
  auto& slot = self->state.children[index];
  assert(!slot.handle);
  sibling_lookup lookup = [self](const std::string& name) {
    for (auto& other : self->state.children)
      if (other.spec.name == name) return other.handle;
    return caf::actor{};
  };
  caf::actor handle;
  std::string failure;
  try {
    handle = slot.spec.start(self->system(), lookup);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!handle) {
    if (failure.empty()) failure = "the factory returned no actor";
    on_child_failure(
        self, index,
        make_error(errc::component_failed, "starting " + slot.spec.name + " failed: " + failure));
    return;
  }
  slot.handle = handle;
  self->monitor(handle);
}

void escalate(self_ptr self, const std::string& child, const caf::error& reason) {
  auto& st = self->state;
  st.stopping = true;
  terminate_children(self, 0, self->state.children.size());
  self->quit(make_error(
      errc::restart_intensity_exceeded,
      st.cfg.name + ": more than " + std::to_string(st.cfg.max_restarts) + " restarts within " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.period).count()) +
          " ms; last failure of " + child + ": " + describe_exit(reason)));
}

// Records a restart now and answers how many happened within the period.
size_t count_restart(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  st.recent_restarts.push_back(now);
  while (!st.recent_restarts.empty() && st.recent_restarts.front() + st.cfg.period <= now)
    st.recent_restarts.pop_front();
  return st.recent_restarts.size();
}

void on_child_failure(self_ptr self, size_t index, const caf::error& reason) {
  auto& st = self->state;
  auto& slot = st.children[index];
  slot.handle = caf::actor{};
  slot.last_failure = describe_exit(reason);
  if (st.stopping) return;
  if (!wants_restart(slot.spec.policy, reason)) {
    slot.finished = true;
    return;
  }
  size_t first = index;
  size_t last = index + 1;
  if (st.cfg.strategy == restart_strategy::rest_for_one) last = st.children.size();
  if (st.cfg.strategy == restart_strategy::one_for_all) {
    first = 0;
    last = st.children.size();
  }
  // Siblings restarted with the failed child stop first, newest first.
  terminate_children(self, first, last);
  for (size_t i = first; i < last; ++i)
    if (!st.children[i].finished) st.children[i].pending = true;
  auto restarts = count_restart(self);
  if (restarts > st.cfg.max_restarts) {
    escalate(self, slot.spec.name, reason);
    return;
  }
  auto delay = backoff_delay(st.cfg.backoff, static_cast<uint32_t>(restarts), st.rng);
  self->delayed_send(self, delay, restart_atom_v, ++st.timer_generation);
}

void restart_pending(self_ptr self) {
  auto& children = self->state.children;
  for (size_t i = 0; i < children.size(); ++i) {
    if (!children[i].pending || self->state.stopping) continue;
    children[i].pending = false;
    ++children[i].restarts;
    start_child(self, i);
  }
}

void on_down(self_ptr self, caf::down_msg& msg) {
  auto& children = self->state.children;
  auto i = std::find_if(children.begin(), children.end(), [&](const child_slot& slot) {
    return slot.handle && slot.handle.address() == msg.source;
  });
  if (i != children.end())
    on_child_failure(self, static_cast<size_t>(i - children.begin()), msg.reason);
}

supervisor_status make_status(const supervisor_state& st) {
  supervisor_status out;
  out.name = st.cfg.name;
  for (auto& slot : st.children)
    out.children.push_back(child_status{slot.spec.name, static_cast<bool>(slot.handle),
                                        slot.restarts, slot.last_failure});
  return out;
}

supervisor_actor::behavior_type supervisor(self_ptr self, supervisor_config cfg) {
  auto& st = self->state;
  st.rng.seed(cfg.seed != 0 ? cfg.seed : std::random_device{}());
  for (auto& spec : cfg.children) {
    assert(spec.start);
    st.children.push_back(child_slot{spec, {}, 0, {}, false, false});
  }
  st.cfg = std::move(cfg);
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->attach_functor([slots = st.slots](const caf::error&) {
    for (auto& slot : *slots)
      if (slot.handle) caf::anon_send_exit(slot.handle, caf::exit_reason::user_shutdown);
  });
  for (size_t i = 0; i < st.children.size(); ++i)
    if (!st.children[i].handle && !st.children[i].pending) start_child(self, i);
  return {
      [self](status_atom) { return make_status(self->state); },
      [self](child_atom, const std::string& name) -> caf::result<caf::actor> {
        for (auto& slot : self->state.children)
          if (slot.spec.name == name) return slot.handle;
        return make_error(errc::invalid_argument,
                          self->state.cfg.name + " has no child named " + name);
      },
      [self](restart_atom, uint64_t generation) {
        if (generation == self->state.timer_generation) restart_pending(self);
      },
      [self](stop_atom) {
        self->state.stopping = true;
        terminate_children(self, 0, self->state.children.size());
        self->quit();
      },
  };
}

}  // namespace

caf::timespan backoff_delay(const backoff_config& cfg, uint32_t attempt, std::mt19937_64& rng) {
  assert(attempt >= 1);
  assert(cfg.factor >= 1.0 && cfg.jitter >= 0.0 && cfg.jitter < 1.0);
  double ns = static_cast<double>(cfg.base.count()) * std::pow(cfg.factor, attempt - 1);
  ns = std::min(ns, static_cast<double>(cfg.cap.count()));
  if (cfg.jitter > 0.0) {
    std::uniform_real_distribution<double> scale{1.0 - cfg.jitter, 1.0 + cfg.jitter};
    ns *= scale(rng);
  }
  return caf::timespan{static_cast<caf::timespan::rep>(ns)};
}

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(supervisor, std::move(cfg));
}

}  // namespace walrus
