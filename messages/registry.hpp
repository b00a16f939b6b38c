// Registers walrus's message types and error category with an actor system
// configuration. Every actor system that runs walrus actors calls this once.
#pragma once

#include "caf/actor_system_config.hpp"

namespace walrus {

void add_message_types(caf::actor_system_config& cfg);

}  // namespace walrus
