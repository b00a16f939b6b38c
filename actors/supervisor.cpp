#include "actors/supervisor.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "caf/actor_cast.hpp"
#include "caf/exit_reason.hpp"
#include "caf/send.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"

namespace walrus {

struct supervision::slot {
  child_spec spec;
  caf::actor handle;  // invalid while the child is down
  uint32_t restarts = 0;
  std::string last_failure;
  bool pending = false;   // waits for the backoff timer
  bool finished = false;  // ended and will not be restarted (policy)
};

namespace {

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

std::string millis(caf::timespan t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count()) + " ms";
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

supervision::supervision(caf::scheduled_actor* owner, supervisor_config cfg, escalation on_escalate)
    : owner_(owner),
      cfg_(std::move(cfg)),
      on_escalate_(std::move(on_escalate)),
      slots_(std::make_shared<std::vector<slot>>()),
      rng_(cfg_.seed != 0 ? cfg_.seed : std::random_device{}()) {
  assert(owner_ != nullptr);
  for (auto& spec : cfg_.children) {
    assert(spec.start);
    slots_->push_back(slot{std::move(spec), {}, 0, {}, false, false});
  }
  cfg_.children.clear();
  owner_->attach_functor([slots = slots_](const caf::error&) {
    for (auto& s : *slots)
      if (s.handle) caf::anon_send_exit(s.handle, caf::exit_reason::user_shutdown);
  });
}

void supervision::start() {
  for (size_t i = 0; i < slots_->size(); ++i)
    if (!(*slots_)[i].handle && !(*slots_)[i].pending) start_child(i);
}

void supervision::add(child_spec spec) {
  assert(spec.start);
  assert(!child(spec.name) && "child names are unique");
  remove(spec.name);  // a finished child of the same name is replaced
  slots_->push_back(slot{std::move(spec), {}, 0, {}, false, false});
  start_child(slots_->size() - 1);
}

void supervision::remove(const std::string& name) {
  auto& slots = *slots_;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].spec.name != name) continue;
    terminate(i, i + 1);
    slots.erase(slots.begin() + static_cast<std::ptrdiff_t>(i));
    return;
  }
}

void supervision::start_child(size_t index) {
  auto& s = (*slots_)[index];
  assert(!s.handle);
  sibling_lookup lookup = [this](const std::string& name) { return child(name); };
  caf::actor handle;
  std::string failure;
  try {
    handle = s.spec.start(owner_->system(), lookup);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!handle) {
    if (failure.empty()) failure = "the factory returned no actor";
    on_failure(index, make_error(errc::component_failed,
                                 "starting " + s.spec.name + " failed: " + failure));
    return;
  }
  s.handle = handle;
  owner_->monitor(handle);
}

// Stops the running children in [first, last), newest first. They are
// demonitored first, so their exits do not come back as failures.
void supervision::terminate(size_t first, size_t last) {
  auto& slots = *slots_;
  for (size_t i = last; i-- > first;) {
    if (!slots[i].handle) continue;
    auto handle = std::move(slots[i].handle);
    slots[i].handle = caf::actor{};
    owner_->demonitor(handle);
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  }
}

size_t supervision::count_restart() {
  auto now = owner_->clock().now();
  recent_restarts_.push_back(now);
  recent_restarts_.erase(std::remove_if(recent_restarts_.begin(), recent_restarts_.end(),
                                        [&](auto t) { return t + cfg_.period <= now; }),
                         recent_restarts_.end());
  return recent_restarts_.size();
}

void supervision::on_failure(size_t index, const caf::error& reason) {
  auto& slots = *slots_;
  slots[index].handle = caf::actor{};
  slots[index].last_failure = describe_exit(reason);
  if (stopping_) return;
  if (!wants_restart(slots[index].spec.policy, reason)) {
    slots[index].finished = true;
    return;
  }
  size_t first = index;
  size_t last = index + 1;
  if (cfg_.strategy == restart_strategy::rest_for_one) last = slots.size();
  if (cfg_.strategy == restart_strategy::one_for_all) {
    first = 0;
    last = slots.size();
  }
  terminate(first, last);  // siblings restarted with it stop first
  for (size_t i = first; i < last; ++i)
    if (!slots[i].finished) slots[i].pending = true;
  auto restarts = count_restart();
  if (restarts > cfg_.max_restarts) {
    auto name = slots[index].spec.name;
    stop();
    on_escalate_(make_error(errc::restart_intensity_exceeded,
                            cfg_.name + ": more than " + std::to_string(cfg_.max_restarts) +
                                " restarts within " + millis(cfg_.period) + "; last failure of " +
                                name + ": " + describe_exit(reason)));
    return;
  }
  auto delay = backoff_delay(cfg_.backoff, static_cast<uint32_t>(restarts), rng_);
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(owner_), delay, restart_atom_v,
                         ++timer_generation_);
}

bool supervision::handle_down(const caf::down_msg& msg) {
  auto& slots = *slots_;
  auto i = std::find_if(slots.begin(), slots.end(), [&](const slot& s) {
    return s.handle && s.handle.address() == msg.source;
  });
  if (i == slots.end()) return false;
  on_failure(static_cast<size_t>(i - slots.begin()), msg.reason);
  return true;
}

void supervision::handle_restart(uint64_t generation) {
  if (generation != timer_generation_ || stopping_) return;
  auto& slots = *slots_;
  for (size_t i = 0; i < slots.size() && !stopping_; ++i) {
    if (!slots[i].pending) continue;
    slots[i].pending = false;
    ++slots[i].restarts;
    start_child(i);
  }
}

void supervision::stop() {
  stopping_ = true;
  terminate(0, slots_->size());
}

caf::actor supervision::child(const std::string& name) const {
  for (auto& s : *slots_)
    if (s.spec.name == name) return s.handle;
  return caf::actor{};
}

supervisor_status supervision::status() const {
  supervisor_status out;
  out.name = cfg_.name;
  for (auto& s : *slots_)
    out.children.push_back(
        child_status{s.spec.name, static_cast<bool>(s.handle), s.restarts, s.last_failure});
  return out;
}

namespace {

struct supervisor_state {
  std::unique_ptr<supervision> children;
  static inline const char* name = "walrus.supervisor";
};

supervisor_actor::behavior_type supervisor(
    supervisor_actor::stateful_pointer<supervisor_state> self, supervisor_config cfg) {
  self->state.children = std::make_unique<supervision>(
      self, std::move(cfg), [self](const caf::error& reason) { self->quit(reason); });
  self->set_down_handler([self](caf::down_msg& msg) { self->state.children->handle_down(msg); });
  self->state.children->start();
  return {
      [self](status_atom) { return self->state.children->status(); },
      [self](child_atom, const std::string& name) -> caf::result<caf::actor> {
        auto st = self->state.children->status();
        for (auto& c : st.children)
          if (c.name == name) return self->state.children->child(name);
        return make_error(errc::invalid_argument, st.name + " has no child named " + name);
      },
      [self](restart_atom, uint64_t generation) {
        self->state.children->handle_restart(generation);
      },
      [self](stop_atom) {
        self->state.children->stop();
        self->quit();
      },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(supervisor, std::move(cfg));
}

}  // namespace walrus
