#include "messages/types.hpp"

namespace walrus {

const char* to_string(ack_level level) noexcept {
  switch (level) {
    case ack_level::received: return "received";
    case ack_level::durable: return "durable";
    case ack_level::applied: return "applied";
  }
  return "unknown";
}

const char* to_string(replica_state state) noexcept {
  switch (state) {
    case replica_state::connecting: return "CONNECTING";
    case replica_state::streaming: return "STREAMING";
    case replica_state::applying: return "APPLYING";
    case replica_state::syncing: return "SYNCING";
    case replica_state::acknowledging: return "ACKNOWLEDGING";
    case replica_state::waiting_for_data: return "WAITING_FOR_DATA";
    case replica_state::bootstrapping: return "BOOTSTRAPPING";
    case replica_state::error: return "ERROR";
  }
  return "UNKNOWN";
}

}  // namespace walrus
