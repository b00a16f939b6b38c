#include "actors/replica_state.hpp"

#include <string>

namespace walrus {
namespace {

using rs = replica_state;

constexpr uint16_t bit(rs s) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(s));
}

// Allowed successors of each state, indexed by the state's value. ERROR and
// CONNECTING (link lost) are reachable from everywhere.
constexpr uint16_t always = bit(rs::error) | bit(rs::connecting);
constexpr uint16_t successors[] = {
    /* connecting       */ always | bit(rs::streaming) | bit(rs::bootstrapping),
    /* streaming        */ always | bit(rs::applying) | bit(rs::waiting_for_data) |
        bit(rs::bootstrapping),
    /* applying         */ always | bit(rs::syncing) | bit(rs::acknowledging),
    /* syncing          */ always | bit(rs::acknowledging),
    /* acknowledging    */ always | bit(rs::streaming) | bit(rs::waiting_for_data) |
        bit(rs::applying),
    /* waiting_for_data */ always | bit(rs::applying) | bit(rs::streaming) | bit(rs::bootstrapping),
    /* bootstrapping    */ always | bit(rs::streaming) | bit(rs::waiting_for_data),
    /* error            */ bit(rs::connecting),
};

}  // namespace

bool valid_transition(replica_state from, replica_state to) noexcept {
  auto i = static_cast<size_t>(from);
  if (i >= std::size(successors)) return false;
  return (successors[i] & bit(to)) != 0;
}

replica_state_machine::replica_state_machine(uint64_t now_us, replica_state initial)
    : current_(initial), since_us_(now_us) {}

status replica_state_machine::enter(replica_state to, uint64_t now_us) {
  if (to == current_) return status{};
  if (!valid_transition(current_, to))
    return status{errc::invalid_transition, std::string("replica state ") + to_string(current_) +
                                                " cannot move to " + to_string(to)};
  history_.push_back(state_transition{current_, to, now_us});
  if (history_.size() > history_limit) history_.pop_front();
  current_ = to;
  since_us_ = now_us;
  return status{};
}

}  // namespace walrus
