// A reusable OTP-style supervisor. It starts its children in order, watches
// them, and restarts them by strategy when they fail:
//   one_for_one   only the failed child,
//   rest_for_one  the failed child and every child declared after it,
//   one_for_all   every child.
// Restarts wait an exponential backoff with jitter. More than `max_restarts`
// restarts within `period` exceed the restart intensity: the supervisor stops
// its children and quits with errc::restart_intensity_exceeded, so that its
// own supervisor (or the host) decides what comes next (escalation).
//
// A child resumes from durable state: its factory runs again on every
// restart and is expected to read its starting position from what survives
// (the replica's last ack, the replica WAL's durable sequence), never from the
// dead incarnation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/scheduled_actor.hpp"
#include "caf/system_messages.hpp"
#include "caf/timespan.hpp"
#include "messages/interfaces.hpp"

namespace walrus {

enum class restart_strategy : uint8_t { one_for_one, rest_for_one, one_for_all };

// permanent: always restarted; transient: restarted only after an abnormal
// exit; temporary: never restarted.
enum class restart_policy : uint8_t { permanent, transient, temporary };

// Looks up the current handle of a sibling declared earlier in the same
// supervisor (an invalid handle while that sibling is down).
using sibling_lookup = std::function<caf::actor(const std::string& name)>;

struct child_spec {
  std::string name;
  // Spawns a fresh incarnation of the child. Runs inside the supervisor.
  std::function<caf::actor(caf::actor_system&, const sibling_lookup&)> start;
  restart_policy policy = restart_policy::permanent;
};

struct backoff_config {
  caf::timespan base = std::chrono::milliseconds(10);
  double factor = 2.0;
  caf::timespan cap = std::chrono::seconds(5);
  double jitter = 0.2;  // the delay is scaled by a factor in [1 - jitter, 1 + jitter]
};

struct supervisor_config {
  std::string name = "supervisor";
  restart_strategy strategy = restart_strategy::one_for_one;
  uint32_t max_restarts = 5;
  caf::timespan period = std::chrono::seconds(10);
  backoff_config backoff;
  uint64_t seed = 0;  // jitter; 0 draws one from std::random_device
  std::vector<child_spec> children;
};

// The delay before restart number `attempt` (1 for the first restart in the
// current period): min(cap, base * factor^(attempt-1)), scaled by jitter.
caf::timespan backoff_delay(const backoff_config& cfg, uint32_t attempt, std::mt19937_64& rng);

// The supervision logic, for any actor that owns children: the plain
// supervisor below, and the primary and replica front actors, which route
// messages to their current children. The owner forwards its down messages
// and (restart_atom, generation) timers here. Children are monitored, not
// linked, so no exit reason of a child (not even `kill`) takes the owner down;
// when the owner dies, the children are stopped with it.
class supervision {
 public:
  // Called once when the restart intensity is exceeded, after the children
  // were stopped; the owner quits with `reason` (or handles it otherwise).
  using escalation = std::function<void(const caf::error& reason)>;

  supervision(caf::scheduled_actor* owner, supervisor_config cfg, escalation on_escalate);
  supervision(const supervision&) = delete;
  supervision& operator=(const supervision&) = delete;

  // Starts the children in declaration order.
  void start();

  // Adds a child after start() and starts it.
  void add(child_spec spec);

  // Stops and forgets a child (it is not restarted).
  void remove(const std::string& name);

  // True if `msg` was about one of the children (it is then handled).
  bool handle_down(const caf::down_msg& msg);

  // The owner received (restart_atom, generation).
  void handle_restart(uint64_t generation);

  // Stops every child, newest first; nothing is restarted afterwards.
  void stop();

  // The current handle of a child (invalid while it is down or unknown).
  caf::actor child(const std::string& name) const;

  supervisor_status status() const;

 private:
  struct slot;
  void start_child(size_t index);
  void on_failure(size_t index, const caf::error& reason);
  void terminate(size_t first, size_t last);
  size_t count_restart();

  caf::scheduled_actor* owner_;
  supervisor_config cfg_;
  escalation on_escalate_;
  // Shared with a cleanup functor on the owner that stops the children when
  // the owner dies for any reason.
  std::shared_ptr<std::vector<slot>> slots_;
  std::vector<caf::actor_clock::time_point> recent_restarts_;  // within cfg_.period
  std::mt19937_64 rng_;
  uint64_t timer_generation_ = 0;
  bool stopping_ = false;
};

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg);

}  // namespace walrus
