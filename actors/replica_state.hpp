// The replica's state machine:
//
//   CONNECTING ──► STREAMING ──► APPLYING ──► SYNCING ──► ACKNOWLEDGING
//       ▲  │           │  ▲          │                        │   │
//       │  ▼           ▼  └──────────┼────────────────────────┘   ▼
//       │ BOOTSTRAPPING ──►   WAITING_FOR_DATA ◄─────────────────────
//       └────────────── (link lost from any state) ── ERROR ◄── (any)
//
// Only the transitions in the table of replica_state.cpp are valid; asking
// for another one is a bug: `enter` refuses it with errc::invalid_transition
// and the owning actor quits with that error, so tests see it loudly.
// Every transition is kept (the most recent `history_limit`) with its time.
#pragma once

#include <cstdint>
#include <deque>

#include "base/status.hpp"
#include "messages/types.hpp"

namespace walrus {

bool valid_transition(replica_state from, replica_state to) noexcept;

class replica_state_machine {
 public:
  static constexpr size_t history_limit = 32;

  explicit replica_state_machine(uint64_t now_us,
                                 replica_state initial = replica_state::connecting);

  replica_state current() const noexcept { return current_; }
  uint64_t since_us() const noexcept { return since_us_; }

  // Moves to `to`; staying in the current state is a no-op.
  [[nodiscard]] status enter(replica_state to, uint64_t now_us);

  // Oldest first.
  const std::deque<state_transition>& history() const noexcept { return history_; }

 private:
  replica_state current_;
  uint64_t since_us_;
  std::deque<state_transition> history_;
};

}  // namespace walrus
