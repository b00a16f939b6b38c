#include "actors/listener.hpp"

#include "actors/read_sizer.hpp"
#include "actors/socket_options.hpp"
#include "base/clock.hpp"
#include "base/crc32c.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>

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
  read_sizer reads{min_read_bytes, max_read_bytes};
  codec::frame_encoder encoder{codec::handshake_max_frame_bytes};
  std::unique_ptr<wire_format::primary_handshake> handshake;
  std::optional<wire_format::primary_session> session;
  std::optional<wire_format::ack_validator> validator;
  caf::actor batcher;  // the sender of the latest batch: acks go there
  caf::actor_clock::time_point last_heard;
  caf::actor_clock::time_point last_sent;
  std::string out;
  // Writing (see send_pending): what is not yet written, the socket, and
  // what CAF holds of this connection's bytes (as its data_transferred
  // reports say). Bound: what the batcher sent and the socket did not take,
  // its window, plus a resend of it for each resend_timeout without acks
  // until peer_timeout drops a replica that stopped reading (with the
  // defaults, 2 s and 3 s: two windows).
  std::deque<shared_bytes> pending;
  int fd = -1;  // -1: no socket (the io_dsl tests): everything goes through CAF
  uint64_t queued = 0;
  bool attaching = false;
  bool closing = false;
  // A snapshot on its way (Welcome.snapshot_follows): attached once installed.
  std::unique_ptr<snapshot_reader> snapshot;
  uint64_t snapshot_sent = 0;
  uint32_t snapshot_crc = 0;
  uint32_t snapshot_in_flight = 0;  // chunks not yet acked
  bool snapshot_ended = false;
  std::string chunk;
};

using conn_ptr = io::stateful_broker<connection_state>*;

// What CAF is given to write when the socket is full: enough to make it
// watch for room (its report that it wrote them resumes send_pending).
constexpr size_t handoff_bytes = 16 * 1024;

// Moves `bytes` bytes from the front of the pending queue into CAF's
// buffer (a copy).
void hand_to_caf(conn_ptr self, size_t bytes) {
  auto& st = self->state;
  auto& buffer = self->wr_buf(st.hdl);
  auto before = buffer.size();
  while (bytes > 0 && !st.pending.empty()) {
    auto& front = st.pending.front();
    auto n = std::min(bytes, front.size());
    buffer.insert(buffer.end(), front.bytes.begin(), front.bytes.begin() + n);
    bytes -= n;
    if (n == front.size())
      st.pending.pop_front();
    else
      front = front.slice(n, front.size() - n);
  }
  if (buffer.size() == before) return;
  st.queued += buffer.size() - before;
  self->flush(st.hdl);
}

// Writes what is pending, in order. While CAF holds none of this
// connection's bytes, straight from where the bytes are (the records of a
// batch in the primary's tail cache or a cursor's buffer) with writev: CAF
// 0.17 would copy them into its buffer, register the socket for writing,
// write on its next loop and unregister it. When the socket is full, CAF
// gets the next handoff_bytes to write once there is room; its report that
// it did brings us back here. A failed direct write leaves everything to
// CAF, whose own write then reports the failure.
void send_pending(conn_ptr self) {
  auto& st = self->state;
  while (st.fd >= 0 && st.queued == 0 && !st.pending.empty()) {
    constexpr size_t max_iov = 64;
    iovec iov[max_iov];
    size_t count = 0;
    size_t asked = 0;
    for (auto it = st.pending.begin(); it != st.pending.end() && count < max_iov; ++it) {
      iov[count++] = {const_cast<char*>(it->bytes.data()), it->size()};
      asked += it->size();
    }
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = count;
    auto n = ::sendmsg(st.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) st.fd = -1;
    auto sent = n > 0 ? static_cast<size_t>(n) : 0;
    while (sent > 0) {
      auto& front = st.pending.front();
      if (sent < front.size()) {
        front = front.slice(sent, front.size() - sent);
        break;
      }
      sent -= front.size();
      st.pending.pop_front();
    }
    if (n < 0 || static_cast<size_t>(n) < asked) break;  // full for now
  }
  if (st.fd < 0)
    hand_to_caf(self, SIZE_MAX);
  else if (st.queued == 0 && !st.pending.empty())
    hand_to_caf(self, handoff_bytes);
  st.last_sent = self->clock().now();
}

// Ends the connection after what is pending: CAF writes what it holds
// before it closes, so the peer gets whole frames, not one cut short.
void quit_after_pending(conn_ptr self, caf::error reason) {
  hand_to_caf(self, SIZE_MAX);
  self->quit(std::move(reason));
}

void write_frame(conn_ptr self, const wire::Frame& frame) {
  auto& st = self->state;
  st.out.clear();
  if (auto encoded = wire_format::encode_frame(frame, st.encoder, st.out); !encoded.ok()) {
    // Only an oversized frame fails here: our own bug, never the peer's.
    quit_after_pending(self, to_error(encoded));
    return;
  }
  st.pending.push_back(shared_bytes::adopt(st.out));
  send_pending(self);
}

// A batch's records go from where they are (the primary's tail cache, or a
// cursor's read buffer) to the socket.
void write_batch(conn_ptr self, const batch& b) {
  auto& st = self->state;
  st.out.clear();
  if (auto prefix = wire_format::batch_frame_prefix(b, st.encoder, st.out); !prefix.ok()) {
    quit_after_pending(self, to_error(prefix));  // as in write_frame: our own bug
    return;
  }
  st.pending.push_back(shared_bytes::adopt(st.out));
  // No empty piece: send_pending takes a write of 0 bytes for a full socket.
  for (const auto& piece : b.records)
    if (piece.size() > 0) st.pending.push_back(piece);
  send_pending(self);
}

// Tells the peer why (unless it told us first) and ends the connection.
void refuse(conn_ptr self, const status& why, bool peer_refused = false) {
  auto& st = self->state;
  if (st.closing) return;
  st.closing = true;
  if (!peer_refused) write_frame(self, wire_format::make_error_frame(why));
  quit_after_pending(self, to_error(why));
}

// Starts the replica's session at session.start_sequence; `welcome` (unless
// already sent) goes out once the primary accepted the session.
void attach_session(conn_ptr self, std::optional<wire::Frame> welcome,
                    wire_format::primary_session session) {
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
          [self, welcome = std::move(welcome), session](uint64_t) mutable {
            auto& s = self->state;
            s.attaching = false;
            if (welcome) write_frame(self, *welcome);
            s.encoder.set_max_frame_bytes(session.send_max_frame_bytes);
            s.decoder.set_max_frame_bytes(session.receive_max_frame_bytes);
            s.validator.emplace(session.start_sequence);
            s.session = std::move(session);
          },
          [self](caf::error& err) { refuse(self, to_status(err)); });
}

// Sends snapshot chunks while fewer than the window are unacked, then
// SnapshotEnd.
void pump_snapshot(conn_ptr self) {
  auto& st = self->state;
  auto& cfg = st.shared->cfg;
  auto& snap = *st.snapshot;
  while (!st.closing && !st.snapshot_ended && st.snapshot_in_flight < cfg.snapshot_window_chunks) {
    if (st.snapshot_sent == snap.size()) {
      wire::Frame end;
      end.mutable_snapshot_end()->set_total_bytes(snap.size());
      end.mutable_snapshot_end()->set_crc32c(st.snapshot_crc);
      write_frame(self, end);
      st.snapshot_ended = true;
      return;
    }
    auto want = std::min<uint64_t>(cfg.snapshot_chunk_bytes, snap.size() - st.snapshot_sent);
    st.chunk.resize(want);
    auto got = snap.read(st.snapshot_sent, st.chunk.data(), want);
    if (!got)
      return refuse(self, status{errc::io_error, "cannot read the snapshot at sequence " +
                                                     std::to_string(snap.sequence()) + ": " +
                                                     got.error().to_string()});
    st.chunk.resize(*got);
    st.snapshot_crc = crc32c::extend(st.snapshot_crc, st.chunk.data(), st.chunk.size());
    wire::Frame frame;
    auto& chunk = *frame.mutable_snapshot_chunk();
    chunk.set_offset(st.snapshot_sent);
    chunk.set_data(st.chunk);
    write_frame(self, frame);
    st.snapshot_sent += *got;
    ++st.snapshot_in_flight;
  }
}

// Welcome.snapshot_follows: the replica's position is gone from the WAL.
// Sends Welcome and the newest snapshot; the session starts after it once
// the replica acks the snapshot's sequence (on_snapshot_ack).
void start_snapshot(conn_ptr self, wire::Frame welcome, wire_format::primary_session session) {
  auto& st = self->state;
  auto gone = "sequence " + std::to_string(session.start_sequence) +
              " is no longer retained; first retained is " +
              std::to_string(st.shared->log->first_sequence());
  auto opened = st.shared->cfg.snapshots->open_latest();
  if (!opened)
    return refuse(self, status{errc::not_retained, gone + ", and no snapshot is available: " +
                                                       opened.error().message()});
  auto& snap = **opened;
  if (snap.sequence() + 1 < st.shared->log->first_sequence())
    return refuse(self, status{errc::not_retained, gone + ", and the newest snapshot (sequence " +
                                                       std::to_string(snap.sequence()) +
                                                       ") is older than that"});
  st.snapshot = std::move(*opened);
  write_frame(self, welcome);
  st.encoder.set_max_frame_bytes(session.send_max_frame_bytes);
  st.decoder.set_max_frame_bytes(session.receive_max_frame_bytes);
  st.session = std::move(session);
  wire::Frame begin;
  begin.mutable_snapshot_begin()->set_snapshot_sequence(st.snapshot->sequence());
  begin.mutable_snapshot_begin()->set_total_bytes(st.snapshot->size());
  begin.mutable_snapshot_begin()->set_epoch(st.shared->cfg.handshake.epoch);
  write_frame(self, begin);
  pump_snapshot(self);
}

void on_snapshot_ack(conn_ptr self, const ack& a) {
  auto& st = self->state;
  auto sequence = st.snapshot->sequence();
  if (a.applied_sequence < sequence) {  // a chunk arrived
    if (st.snapshot_in_flight > 0) --st.snapshot_in_flight;
    return pump_snapshot(self);
  }
  if (!st.snapshot_ended)
    return refuse(self, status{errc::protocol_violation,
                               "the replica acked the snapshot's sequence " +
                                   std::to_string(sequence) + " before SnapshotEnd"});
  // Installed: stream from the snapshot on.
  st.snapshot.reset();
  auto session = *st.session;
  session.start_sequence = sequence + 1;
  session.snapshot_follows = false;
  attach_session(self, std::nullopt, std::move(session));
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
  if (step->session && step->session->snapshot_follows)
    start_snapshot(self, std::move(step->reply), std::move(*step->session));
  else if (step->session)
    attach_session(self, std::move(step->reply), std::move(*step->session));
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
      if (st.snapshot) return on_snapshot_ack(self, a);
      if (!st.validator) return;  // the session after a snapshot is being attached
      if (auto valid = st.validator->check(a); !valid.ok()) return refuse(self, valid);
      if (st.batcher) self->send(st.batcher, ack_atom_v, a);
      return;
    }
    case wire::Frame::kNack: {
      if (st.snapshot || !st.validator)
        return refuse(self, status{errc::protocol_violation, "Nack during a snapshot transfer"});
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
  if (st.reads.observe(msg.buf.size()))
    self->configure_read(msg.handle, io::receive_policy::at_most(st.reads.size()));
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
  self->configure_read(hdl, io::receive_policy::at_most(st.reads.size()));
  send_without_delay(self, hdl);
  st.fd = socket_of(self, hdl);
  self->ack_writes(hdl, true);
  // Ended from outside (the front replaced or ended the session): as
  // CAF's default handler does, but with whole frames.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason) quit_after_pending(self, std::move(msg.reason));
  });
  self->delayed_send(self, 100ms, caf::tick_atom_v);
  return {
      [self](const io::new_data_msg& msg) { on_data(self, msg); },
      [self](const batch& b) {
        auto& s = self->state;
        if (!s.session || s.closing) return;
        s.batcher = caf::actor_cast<caf::actor>(self->current_sender());
        s.validator->note_sent(b.last_sequence);
        write_batch(self, b);
      },
      [self](caf::tick_atom) { on_tick(self); },
      [self](const io::data_transferred_msg& msg) {
        self->state.queued = msg.remaining;
        if (msg.remaining == 0) send_pending(self);
      },
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
  cfg.handshake.snapshots = cfg.snapshots != nullptr;
  cfg.snapshot_chunk_bytes = std::clamp<uint32_t>(cfg.snapshot_chunk_bytes, 4096, 512 * 1024);
  cfg.snapshot_window_chunks = std::max<uint32_t>(cfg.snapshot_window_chunks, 1);
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
