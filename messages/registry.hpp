// Registers walrus's message types and error category with an actor system
// configuration. Every actor system that runs walrus actors calls this once.
#pragma once

#include "caf/actor_system_config.hpp"

namespace walrus {

void add_message_types(caf::actor_system_config& cfg);

// The scheduler walrus's actors run best on (docs/embedding.md): one worker
// per core (CAF 0.17 starts at least four, which on a small machine
// displace each other and the host's threads) and the `sharing` policy
// (idle workers wait on a condition; work stealing's idle workers sleep up
// to 10 ms, which every hop between the replication actors can pay). A host
// may set either differently afterwards.
void use_recommended_scheduler(caf::actor_system_config& cfg);

}  // namespace walrus
