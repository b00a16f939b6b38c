#include "actors/replica.hpp"

#include "actors/durable_watch.hpp"
#include "actors/local_link.hpp"
#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct replica_state {
  replica_config cfg;
  std::shared_ptr<wal::log> log;
  std::unique_ptr<supervision> children;  // [applier, transport]
  static inline const char* name = "walrus.replica";
};

using self_ptr = replica_actor::stateful_pointer<replica_state>;

}  // namespace

transport_factory local_transport(local_link_config cfg) {
  return [cfg](caf::actor_system& sys, applier_actor applier) {
    return caf::actor_cast<caf::actor>(spawn_local_link(sys, cfg, applier));
  };
}

namespace {

replica_actor::behavior_type replica(self_ptr self, replica_config cfg,
                                     std::shared_ptr<state_machine> machine,
                                     std::shared_ptr<wal::log> log) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.log = log;
  auto watch = std::make_shared<durable_watch>();
  log->set_commit_hook([watch](uint64_t durable) { watch->notify(durable); });
  self->attach_functor([log](const caf::error&) { log->set_commit_hook(nullptr); });
  supervisor_config sc;
  sc.name = st.cfg.replica_id;
  sc.strategy = restart_strategy::rest_for_one;
  sc.max_restarts = st.cfg.max_restarts;
  sc.period = st.cfg.restart_period;
  sc.backoff = st.cfg.backoff;
  sc.seed = st.cfg.seed;
  applier_config ac;
  ac.replica_id = st.cfg.replica_id;
  ac.log = log;
  ac.machine = std::move(machine);
  ac.watch = watch;
  ac.max_batch_bytes = st.cfg.max_batch_bytes;
  ac.snapshots = st.cfg.snapshots;
  sc.children.push_back(child_spec{"applier", [ac](caf::actor_system& sys, const sibling_lookup&) {
                                     return caf::actor_cast<caf::actor>(spawn_applier(sys, ac));
                                   }});
  auto make_transport = st.cfg.transport;
  sc.children.push_back(
      child_spec{"transport", [make_transport](caf::actor_system& sys, const sibling_lookup& find) {
                   auto applier = caf::actor_cast<applier_actor>(find("applier"));
                   if (!applier || !make_transport) return caf::actor{};
                   return make_transport(sys, applier);
                 }});
  st.children = std::make_unique<supervision>(self, std::move(sc),
                                              [self](const caf::error& e) { self->quit(e); });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& children = *self->state.children;
    bool transport_died = msg.source == children.child("transport").address();
    if (!children.handle_down(msg) || !transport_died) return;
    if (auto a = caf::actor_cast<applier_actor>(children.child("applier")))
      self->send(a, connected_atom_v, false, uint64_t{0});
  });
  st.children->start();
  return {
      [self](status_atom) -> caf::result<replica_status> {
        auto a = caf::actor_cast<applier_actor>(self->state.children->child("applier"));
        if (!a) return make_error(errc::component_failed, "the applier is restarting");
        // The applier's status, with the restart counts of this supervisor.
        auto rp = self->make_response_promise<replica_status>();
        self->request(a, caf::infinite, status_atom_v)
            .then(
                [self, rp](replica_status& st) mutable {
                  for (auto& c : self->state.children->status().children) {
                    if (c.name == "applier") st.applier_restarts = c.restarts;
                    if (c.name == "transport") st.transport_restarts = c.restarts;
                  }
                  rp.deliver(std::move(st));
                },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](child_atom, const std::string& name) { return self->state.children->child(name); },
      [self](restart_atom, uint64_t generation) {
        self->state.children->handle_restart(generation);
      },
      [self](stop_atom) {
        self->state.children->stop();
        self->quit();
      },
  };
}

}  // namespace

replica_actor spawn_replica(caf::actor_system& sys, replica_config cfg,
                            std::shared_ptr<state_machine> machine, std::shared_ptr<wal::log> log) {
  return sys.spawn(replica, std::move(cfg), std::move(machine), std::move(log));
}

}  // namespace walrus
