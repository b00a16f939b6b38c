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
#include <random>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
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

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg);

}  // namespace walrus
