// The simulation's own actors (tests/support/sim.hpp). They run on the test
// coordinator like every walrus actor, so what they do is interleaved with the
// pipeline by the same seeded scheduler:
//
// * the driver runs the harness's commands (a closure per message): queries
//   of a part's current handle followed by a kill or a stall, waits on the
//   primary, status queries; and it monitors the primary and replica fronts,
//   reporting every exit to the harness (a host that restarts what died);
// * the primary's address stands where a replica's transport dials: it
//   forwards to whichever primary front is current, and when the harness
//   crashes that primary it resets every link attached through it, as the
//   kernel closes the sockets of a dead process. A link that dials while no
//   primary runs is refused.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "caf/allowed_unsafe_message_type.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"
#include "messages/interfaces.hpp"

namespace walrus::testing {

// A harness command: runs inside the driver actor.
struct sim_command {
  std::function<void(caf::event_based_actor*)> run;
};

}  // namespace walrus::testing

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(walrus::testing::sim_command)

namespace walrus::testing {

// What the harness and its actors share. Every actor runs on the harness's
// thread (the test coordinator), so nothing here needs a lock.
struct sim_network {
  primary_actor primary;               // the current primary front; invalid while down
  std::vector<transport_actor> links;  // attached through the address to `primary`
  std::vector<caf::down_msg> exits;    // fronts that ended, in order, for the harness
  // Waits answered: (sequence, replicas that reached it durably).
  std::vector<std::pair<uint64_t, uint32_t>> confirmed;
  std::optional<primary_status> status;  // the answer to the latest status query
  // Replicas that fell behind the primary's first retained sequence: whether
  // the primary's status listed them (its ack tracker knew them) right after.
  std::map<std::string, bool> behind_listed;
};

struct sim_driver_state {
  static inline const char* name = "walrus.sim_driver";
};

inline caf::behavior sim_driver(caf::stateful_actor<sim_driver_state>* self,
                                std::shared_ptr<sim_network> net) {
  self->set_down_handler([net](caf::down_msg& msg) { net->exits.push_back(std::move(msg)); });
  return {
      [self](sim_command& cmd) { cmd.run(self); },
  };
}

inline primary_actor::behavior_type sim_primary_address(primary_actor::pointer self,
                                                        std::shared_ptr<sim_network> net) {
  auto down = [] { return make_error(errc::component_failed, "the primary is down"); };
  return {
      [self, net, down](status_atom) -> caf::result<primary_status> {
        if (!net->primary) return down();
        return self->delegate(net->primary, status_atom_v);
      },
      [self, net, down](wait_atom, const wait_request& w) -> caf::result<uint32_t> {
        if (!net->primary) return down();
        return self->delegate(net->primary, wait_atom_v, w);
      },
      [self, net](attach_atom, const session_request& req,
                  const transport_actor& link) -> caf::result<uint64_t> {
        if (!net->primary)
          return make_error(errc::io_error, "connection refused: the primary is down");
        net->links.push_back(link);
        return self->delegate(net->primary, attach_atom_v, req, link);
      },
      [self, net](ack_atom, const std::string& replica, const ack& a, uint64_t in_flight,
                  uint64_t batches, uint64_t bytes, uint64_t wire_bytes) {
        if (net->primary)
          self->send(net->primary, ack_atom_v, replica, a, in_flight, batches, bytes, wire_bytes);
      },
      [self, net, down](caf::get_atom, const std::string& replica) -> caf::result<uint64_t> {
        if (!net->primary) return down();
        return self->delegate(net->primary, caf::get_atom_v, replica);
      },
      [self, net, down](child_atom, const std::string& path) -> caf::result<caf::actor> {
        if (!net->primary) return down();
        return self->delegate(net->primary, child_atom_v, path);
      },
      [](restart_atom, uint64_t) {},
      [](stop_atom) {},
  };
}

}  // namespace walrus::testing
