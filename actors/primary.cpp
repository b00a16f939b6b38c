#include "actors/primary.hpp"

#include <map>

#include "actors/ack_tracker.hpp"
#include "actors/durable_watch.hpp"
#include "actors/tailer.hpp"
#include "caf/actor_cast.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "codec/codec.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

struct session {
  transport_actor link;
  supervisor_actor children;  // [tailer, batcher]
};

struct primary_state {
  primary_config cfg;
  std::shared_ptr<wal::log> log;
  std::shared_ptr<durable_watch> watch;
  std::unique_ptr<supervision> children;  // [ack_tracker]
  std::map<std::string, session> sessions;
  std::map<std::string, uint64_t> resume;  // replica -> next sequence it needs
  static inline const char* name = "walrus.primary";
};

using self_ptr = primary_actor::stateful_pointer<primary_state>;

ack_tracker_actor tracker(self_ptr self) {
  return caf::actor_cast<ack_tracker_actor>(self->state.children->child("ack_tracker"));
}

supervisor_config restart_limits(const primary_config& cfg, std::string name,
                                 restart_strategy strategy) {
  supervisor_config out;
  out.name = std::move(name);
  out.strategy = strategy;
  out.max_restarts = cfg.max_restarts;
  out.period = cfg.restart_period;
  out.backoff = cfg.backoff;
  out.seed = cfg.seed;
  return out;
}

supervisor_actor spawn_session(self_ptr self, const session_request& req,
                               const transport_actor& link) {
  const auto& replica = req.replica_id;
  auto& st = self->state;
  auto cfg = restart_limits(st.cfg, "session " + replica, restart_strategy::rest_for_one);
  tailer_config tc{replica, st.log, st.watch, st.cfg.max_block_bytes};
  cfg.children.push_back(child_spec{"tailer", [tc](caf::actor_system& sys, const sibling_lookup&) {
                                      return caf::actor_cast<caf::actor>(spawn_tailer(sys, tc));
                                    }});
  batcher_config bc = st.cfg.session;
  bc.replica_id = replica;
  bc.start_sequence = req.start_sequence;
  auto negotiated = static_cast<codec::codec_id>(req.codec);
  if (negotiated != bc.codec.id)
    bc.codec = codec::codec_config{
        negotiated, negotiated == codec::codec_id::zstd ? codec::default_zstd_level : 0};
  if (req.max_batch_bytes > 0 && req.max_batch_bytes < bc.max_batch_bytes) {
    bc.max_batch_bytes = req.max_batch_bytes;
    bc.window_bytes = std::max(bc.window_bytes, 2 * bc.max_batch_bytes);
  }
  auto front = caf::actor_cast<primary_actor>(self);
  batch_sink_actor sink = caf::actor_cast<batch_sink_actor>(link);
  cfg.children.push_back(
      child_spec{"batcher", [bc, front, sink](caf::actor_system& sys, const sibling_lookup& find) {
                   auto tailer = caf::actor_cast<tailer_actor>(find("tailer"));
                   if (!tailer) return caf::actor{};
                   return caf::actor_cast<caf::actor>(spawn_batcher(sys, bc, tailer, sink, front));
                 }});
  return spawn_supervisor(self->system(), std::move(cfg));
}

void end_session(self_ptr self, std::string replica, const caf::error& reason) {
  auto i = self->state.sessions.find(replica);
  if (i == self->state.sessions.end()) return;
  self->demonitor(i->second.link.address());
  self->demonitor(i->second.children.address());
  self->send_exit(i->second.children, caf::exit_reason::user_shutdown);
  // The transport ends with the session; its own supervisor dials again.
  self->send_exit(i->second.link, reason ? reason : caf::error{caf::exit_reason::user_shutdown});
  self->state.sessions.erase(i);
  if (auto t = tracker(self)) self->send(t, detach_atom_v, replica);
}

caf::result<uint64_t> attach(self_ptr self, const session_request& req,
                             const transport_actor& link) {
  auto& st = self->state;
  const auto& replica = req.replica_id;
  auto start = req.start_sequence;
  if (req.codec > static_cast<uint8_t>(codec::codec_id::zstd))
    return make_error(errc::unsupported_codec, "codec " + std::to_string(req.codec));
  auto first = st.log->first_sequence();
  auto durable = st.log->durable_sequence();
  if (start < first)
    return make_error(errc::not_retained, "sequence " + std::to_string(start) +
                                              " is no longer retained; first retained is " +
                                              std::to_string(first));
  if (start > durable + 1)
    return make_error(errc::protocol_violation,
                      "replica " + replica + " starts at " + std::to_string(start) +
                          " but the primary's log ends at " + std::to_string(durable));
  end_session(self, replica, make_error(errc::stopped, "replaced by a new connection"));
  st.resume[replica] = start;
  auto children = spawn_session(self, req, link);
  self->monitor(link);
  self->monitor(children);
  st.sessions[replica] = session{link, children};
  if (auto t = tracker(self)) self->send(t, attach_atom_v, replica, start);
  return durable;
}

void on_down(self_ptr self, caf::down_msg& msg) {
  auto& st = self->state;
  if (st.children->handle_down(msg)) return;
  for (auto& [replica, s] : st.sessions) {
    if (s.link.address() == msg.source) {
      end_session(self, replica, caf::error{});
      return;
    }
    if (s.children.address() == msg.source) {
      // The session escalated: end the connection, the replica comes back.
      end_session(self, replica, msg.reason);
      return;
    }
  }
}

primary_actor::behavior_type primary(self_ptr self, primary_config cfg,
                                     std::shared_ptr<wal::log> log) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.log = std::move(log);
  st.watch = std::make_shared<durable_watch>();
  st.log->set_commit_hook([watch = st.watch](uint64_t durable) { watch->notify(durable); });
  auto front_cfg = restart_limits(st.cfg, st.cfg.primary_id, restart_strategy::one_for_one);
  ack_tracker_config tc{st.log, st.watch, st.cfg.retention_interval, 65536};
  front_cfg.children.push_back(
      child_spec{"ack_tracker", [self, tc](caf::actor_system& sys, const sibling_lookup&) {
                   auto t = spawn_ack_tracker(sys, tc);
                   // A new tracker learns the live sessions; acks refill positions.
                   for (auto& [replica, s] : self->state.sessions)
                     caf::anon_send(t, attach_atom_v, replica, self->state.resume[replica]);
                   return caf::actor_cast<caf::actor>(t);
                 }});
  st.children = std::make_unique<supervision>(self, std::move(front_cfg),
                                              [self](const caf::error& e) { self->quit(e); });
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->attach_functor([log = st.log](const caf::error&) { log->set_commit_hook(nullptr); });
  st.children->start();
  return {
      [self](status_atom) -> caf::result<primary_status> {
        if (auto t = tracker(self)) return self->delegate(t, status_atom_v);
        return make_error(errc::component_failed, "the ack tracker is restarting");
      },
      [self](wait_atom, const wait_request& w) -> caf::result<uint32_t> {
        if (auto t = tracker(self)) return self->delegate(t, wait_atom_v, w);
        return make_error(errc::component_failed, "the ack tracker is restarting");
      },
      [self](attach_atom, const session_request& req, const transport_actor& link) {
        return attach(self, req, link);
      },
      [self](ack_atom, const std::string& replica, const ack& a, uint64_t in_flight,
             uint64_t batches, uint64_t bytes, uint64_t wire_bytes) {
        auto& next = self->state.resume[replica];
        next = std::max(next, a.received_sequence + 1);
        if (auto t = tracker(self))
          self->send(t, ack_atom_v, replica, a, in_flight, batches, bytes, wire_bytes);
      },
      [self](caf::get_atom, const std::string& replica) -> uint64_t {
        auto i = self->state.resume.find(replica);
        return i == self->state.resume.end() ? 1 : i->second;
      },
      [self](child_atom, const std::string& path) -> caf::result<caf::actor> {
        auto& st = self->state;
        auto at = path.find('@');
        if (at == std::string::npos) return st.children->child(path);
        auto i = st.sessions.find(path.substr(at + 1));
        if (i == st.sessions.end())
          return make_error(errc::invalid_argument, "no session for " + path.substr(at + 1));
        if (path.compare(0, at, "session") == 0)
          return caf::actor_cast<caf::actor>(i->second.children);
        return self->delegate(i->second.children, child_atom_v, path.substr(0, at));
      },
      [self](restart_atom, uint64_t generation) {
        self->state.children->handle_restart(generation);
      },
      [self](stop_atom) {
        std::vector<std::string> replicas;
        for (auto& [replica, s] : self->state.sessions) replicas.push_back(replica);
        for (auto& replica : replicas) end_session(self, replica, caf::exit_reason::user_shutdown);
        self->state.children->stop();
        self->quit();
      },
  };
}

}  // namespace

primary_actor spawn_primary(caf::actor_system& sys, primary_config cfg,
                            std::shared_ptr<wal::log> log) {
  return sys.spawn(primary, std::move(cfg), std::move(log));
}

}  // namespace walrus
