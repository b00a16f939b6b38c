#include "actors/local_link.hpp"

#include <chrono>

#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"

namespace walrus {
namespace {

struct link_state {
  local_link_config cfg;
  applier_actor applier;
  batcher_actor batcher;  // the sender of the latest batch
  bool stalled = false;
  std::vector<batch> held;
  static inline const char* name = "walrus.local_link";
};

using self_ptr = local_link_actor::stateful_pointer<link_state>;

local_link_actor::behavior_type local_link(self_ptr self, local_link_config cfg,
                                           applier_actor applier) {
  self->state.cfg = std::move(cfg);
  self->state.applier = std::move(applier);
  auto timeout = std::chrono::seconds(5);
  // Resume after the applier's durable sequence, like a Hello would.
  self->request(self->state.applier, timeout, status_atom_v)
      .then(
          [self, timeout](const replica_status& rs) {
            auto start = rs.durable_sequence + 1;
            session_request req;
            req.replica_id = self->state.cfg.replica_id;
            req.start_sequence = start;
            req.codec = static_cast<uint8_t>(self->state.cfg.codec);
            self->request(self->state.cfg.primary, timeout, attach_atom_v, std::move(req),
                          caf::actor_cast<transport_actor>(self))
                .then(
                    [self](uint64_t primary_sequence) {
                      self->send(self->state.applier, connected_atom_v, true, primary_sequence);
                    },
                    [self](caf::error& err) { self->quit(std::move(err)); });
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
  return {
      [self](batch& b) {
        self->state.batcher = caf::actor_cast<batcher_actor>(self->current_sender());
        if (self->state.cfg.drop && self->state.cfg.drop(b)) return;
        if (self->state.stalled) {
          self->state.held.push_back(std::move(b));
          return;
        }
        self->send(self->state.applier, std::move(b));
      },
      [self](stall_atom, bool stalled) {
        auto& st = self->state;
        st.stalled = stalled;
        if (stalled) return;
        for (auto& b : st.held) self->send(st.applier, std::move(b));
        st.held.clear();
      },
      [self](ack_atom, const ack& a) {
        if (self->state.batcher) self->send(self->state.batcher, ack_atom_v, a);
      },
      [self](nack_atom, const nack& n) {
        if (self->state.batcher) self->send(self->state.batcher, nack_atom_v, n);
      },
  };
}

}  // namespace

local_link_actor spawn_local_link(caf::actor_system& sys, local_link_config cfg,
                                  applier_actor applier) {
  return sys.spawn(local_link, std::move(cfg), std::move(applier));
}

}  // namespace walrus
