#include "actors/listener.hpp"

#include "base/clock.hpp"

#include <chrono>

#include "caf/actor_cast.hpp"
#include "caf/io/broker.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

using namespace std::chrono_literals;
namespace io = caf::io;

struct shared_config {
  listener_config cfg;
  primary_actor primary;
  std::shared_ptr<wal::log> log;
};

// One replica connection, from the first byte to close.
struct connection_state {
  std::shared_ptr<const shared_config> shared;
  io::connection_handle hdl;
  codec::frame_decoder decoder{codec::handshake_max_frame_bytes};
  codec::frame_encoder encoder{codec::handshake_max_frame_bytes};
  std::unique_ptr<wire_format::primary_handshake> handshake;
  std::optional<wire_format::primary_session> session;
  std::optional<wire_format::ack_validator> validator;
  caf::actor batcher;  // the sender of the latest batch: acks go there
  caf::actor_clock::time_point last_heard;
  caf::actor_clock::time_point last_sent;
  std::string out;
  bool attaching = false;
  bool closing = false;
};

using conn_ptr = io::stateful_broker<connection_state>*;

void write_frame(conn_ptr self, const wire::Frame& frame) {
  auto& st = self->state;
  st.out.clear();
  if (auto encoded = wire_format::encode_frame(frame, st.encoder, st.out); !encoded.ok()) {
    // Only an oversized frame fails here: our own bug, never the peer's.
    self->quit(to_error(encoded));
    return;
  }
  self->write(st.hdl, st.out.size(), st.out.data());
  self->flush(st.hdl);
  st.last_sent = self->clock().now();
}

// Tells the peer why (unless it told us first) and ends the connection.
void refuse(conn_ptr self, const status& why, bool peer_refused = false) {
  auto& st = self->state;
  if (st.closing) return;
  st.closing = true;
  if (!peer_refused) write_frame(self, wire_format::make_error_frame(why));
  self->quit(to_error(why));
}

void on_welcome_ready(conn_ptr self, wire::Frame reply, wire_format::primary_session session) {
  auto& st = self->state;
  st.attaching = true;
  session_request req;
  req.replica_id = session.replica_id;
  req.start_sequence = session.start_sequence;
  req.codec = static_cast<uint8_t>(session.codec);
  req.max_batch_bytes = session.max_uncompressed_bytes;
  self->request(st.shared->primary, 5s, attach_atom_v, std::move(req),
                caf::actor_cast<transport_actor>(self))
      .then(
          [self, reply = std::move(reply), session](uint64_t) mutable {
            auto& s = self->state;
            s.attaching = false;
            write_frame(self, reply);
            s.encoder.set_max_frame_bytes(session.send_max_frame_bytes);
            s.decoder.set_max_frame_bytes(session.receive_max_frame_bytes);
            s.validator.emplace(session.start_sequence);
            s.session = std::move(session);
          },
          [self](caf::error& err) { refuse(self, to_status(err)); });
}

void on_handshake_frame(conn_ptr self, const wire::Frame& frame) {
  auto& st = self->state;
  if (st.attaching) {
    refuse(self, status{errc::protocol_violation,
                        std::string(wire_format::frame_name(frame)) + " before Welcome"});
    return;
  }
  auto step = st.handshake->on_frame(frame, st.shared->log->first_sequence(),
                                     st.shared->log->durable_sequence());
  if (!step) {
    refuse(self, step.error(), st.handshake->peer_refused());
    return;
  }
  if (step->session)
    on_welcome_ready(self, std::move(step->reply), std::move(*step->session));
  else
    write_frame(self, step->reply);
}

void on_session_frame(conn_ptr self, wire::Frame& frame) {
  auto& st = self->state;
  if (auto allowed = wire_format::check_session_frame(frame, wire_format::peer_role::replica);
      !allowed.ok()) {
    refuse(self, allowed);
    return;
  }
  switch (frame.body_case()) {
    case wire::Frame::kAck: {
      auto a = wire_format::from_wire(frame.ack());
      if (auto valid = st.validator->check(a); !valid.ok()) return refuse(self, valid);
      if (st.batcher) self->send(st.batcher, ack_atom_v, a);
      return;
    }
    case wire::Frame::kNack: {
      auto n = wire_format::from_wire(frame.nack());
      if (!n) return refuse(self, n.error());
      if (auto valid = st.validator->check(*n); !valid.ok()) return refuse(self, valid);
      if (st.batcher) self->send(st.batcher, nack_atom_v, *n);
      return;
    }
    case wire::Frame::kError: return refuse(self, wire_format::from_wire(frame.error()), true);
    default:  // Heartbeat: being heard is all it says
      return;
  }
}

void on_data(conn_ptr self, const io::new_data_msg& msg) {
  auto& st = self->state;
  st.last_heard = self->clock().now();
  st.decoder.feed(msg.buf.data(), msg.buf.size());
  wire::Frame frame;
  while (!st.closing) {
    auto body = st.decoder.next();
    if (!body) return refuse(self, body.error());
    if (!*body) return;
    if (auto decoded = wire_format::decode_frame(**body, frame); !decoded.ok())
      return refuse(self, decoded);
    if (st.session)
      on_session_frame(self, frame);
    else
      on_handshake_frame(self, frame);
  }
}

void on_tick(conn_ptr self) {
  auto& st = self->state;
  if (st.closing) return;
  auto now = self->clock().now();
  if (!st.session) {
    if (now - st.last_heard >= st.shared->cfg.handshake_timeout)
      refuse(self, status{errc::peer_timeout,
                          "no handshake within " +
                              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 st.shared->cfg.handshake_timeout)
                                                 .count()) +
                              " ms"});
    else
      self->delayed_send(self, 100ms, caf::tick_atom_v);
    return;
  }
  auto interval = std::chrono::milliseconds(st.session->heartbeat_interval_ms);
  auto timeout =
      std::chrono::milliseconds(wire_format::peer_timeout_ms(st.session->heartbeat_interval_ms));
  if (now - st.last_heard >= timeout) {
    refuse(self,
           status{errc::peer_timeout, "replica " + st.session->replica_id + " was silent for " +
                                          std::to_string(timeout.count()) + " ms"});
    return;
  }
  if (now - st.last_sent >= interval)
    write_frame(self, wire_format::make_frame(wire_format::heartbeat{
                          wall_clock_us(), st.shared->log->durable_sequence()}));
  self->delayed_send(self, interval / 2, caf::tick_atom_v);
}

caf::behavior connection(conn_ptr self, io::connection_handle hdl,
                         std::shared_ptr<const shared_config> shared) {
  auto& st = self->state;
  st.shared = std::move(shared);
  st.hdl = hdl;
  st.handshake = std::make_unique<wire_format::primary_handshake>(st.shared->cfg.handshake);
  st.last_heard = st.last_sent = self->clock().now();
  self->configure_read(hdl, io::receive_policy::at_most(256 * 1024));
  self->delayed_send(self, 100ms, caf::tick_atom_v);
  return {
      [self](const io::new_data_msg& msg) { on_data(self, msg); },
      [self](batch& b) {
        auto& s = self->state;
        if (!s.session || s.closing) return;
        s.batcher = caf::actor_cast<caf::actor>(self->current_sender());
        s.validator->note_sent(b.last_sequence);
        write_frame(self, wire_format::make_frame(std::move(b)));
      },
      [self](caf::tick_atom) { on_tick(self); },
      [self](const io::connection_closed_msg&) {
        self->state.closing = true;
        self->quit();
      },
  };
}

struct listener_state {
  std::shared_ptr<const shared_config> shared;
  uint16_t port = 0;
};

caf::behavior listener(io::stateful_broker<listener_state>* self,
                       std::shared_ptr<const shared_config> shared) {
  self->state.shared = shared;
  auto& cfg = shared->cfg;
  auto doorman = self->add_tcp_doorman(cfg.port, cfg.host.c_str(), true);
  if (!doorman) {
    // Answer the port request with the cause, then end.
    auto err =
        make_error(errc::io_error, "cannot listen on " + cfg.host + ":" + std::to_string(cfg.port) +
                                       ": " + self->system().render(doorman.error()));
    return {[self, err](caf::get_atom) -> caf::result<uint16_t> {
      self->quit(err);
      return err;
    }};
  }
  self->state.port = doorman->second;
  return {
      [self](const io::new_connection_msg& msg) {
        self->fork(connection, msg.handle, self->state.shared);
      },
      [self](caf::get_atom) { return self->state.port; },
      [self](const io::acceptor_closed_msg&) {
        self->quit(make_error(errc::io_error, "the listening socket closed"));
      },
  };
}

}  // namespace

caf::actor spawn_listener(caf::actor_system& sys, listener_config cfg, primary_actor primary,
                          std::shared_ptr<wal::log> log) {
  auto shared = std::make_shared<const shared_config>(
      shared_config{std::move(cfg), std::move(primary), std::move(log)});
  return sys.middleman().spawn_broker(listener, std::move(shared));
}

result<std::pair<caf::actor, uint16_t>> listen(caf::actor_system& sys, listener_config cfg,
                                               primary_actor primary,
                                               std::shared_ptr<wal::log> log) {
  if (auto valid = wire_format::validate(cfg.handshake); !valid.ok()) return valid;
  auto listener = spawn_listener(sys, std::move(cfg), std::move(primary), std::move(log));
  caf::scoped_actor self{sys};
  result<std::pair<caf::actor, uint16_t>> out =
      status{errc::io_error, "the listener did not answer"};
  self->request(listener, std::chrono::seconds(5), caf::get_atom_v)
      .receive([&](uint16_t port) { out = std::make_pair(listener, port); },
               [&](caf::error& err) { out = to_status(err); });
  return out;
}

}  // namespace walrus
