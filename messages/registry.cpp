#include "messages/registry.hpp"

#include "messages/error.hpp"
#include "messages/type_ids.hpp"

#include <algorithm>
#include <thread>

namespace walrus {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::walrus>();
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           return render(caf::error{code, error_category, ctx});
                         });
}

void use_recommended_scheduler(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", std::max(1u, std::thread::hardware_concurrency()));
  cfg.set("scheduler.policy", caf::atom("sharing"));
}

}  // namespace walrus
