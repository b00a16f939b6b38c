#include "actors/connector.hpp"

#include "actors/frame_buffers.hpp"
#include "actors/socket_options.hpp"
#include "base/clock.hpp"
#include "base/crc32c.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include "caf/actor_cast.hpp"
#include "caf/io/broker.hpp"
#include "caf/io/middleman.hpp"
#include "messages/error.hpp"

namespace walrus {
namespace {

using namespace std::chrono_literals;
namespace io = caf::io;

struct connector_state {
  connector_config cfg;
  applier_actor applier;
  std::optional<io::connection_handle> hdl;
  // Frames are read with reads of exact sizes (header, then body), each
  // body into a buffer of its own that a Batch takes to the applier.
  std::optional<codec::frame_reader> reader;
  std::shared_ptr<frame_buffers> buffers = std::make_shared<frame_buffers>();
  std::vector<char> header;  // the header reads' buffer while a body is read
  std::optional<codec::frame_encoder> encoder;
  std::unique_ptr<wire_format::replica_handshake> handshake;
  std::optional<wire_format::replica_session> session;
  uint32_t failures = 0;    // consecutive, for the backoff
  uint64_t generation = 0;  // of the connection; stale timers are ignored
  std::mt19937_64 rng;
  caf::actor_clock::time_point last_heard;
  caf::actor_clock::time_point last_sent;
  uint64_t durable = 0;  // the applier's, for heartbeats
  // Welcome said a snapshot comes first; `snapshot` is the one arriving.
  bool snapshot_expected = false;
  std::optional<snapshot_piece> snapshot;  // sequence, total_bytes; offset = bytes so far
  uint32_t snapshot_crc = 0;
  std::string out;
  std::string last_error;
};

using self_ptr = io::stateful_broker<connector_state>*;

void schedule_dial(self_ptr self);

void write_frame(self_ptr self, const wire::Frame& frame) {
  auto& st = self->state;
  if (!st.hdl) return;
  st.out.clear();
  if (auto encoded = wire_format::encode_frame(frame, *st.encoder, st.out); !encoded.ok()) {
    self->quit(to_error(encoded));
    return;
  }
  self->write(*st.hdl, st.out.size(), st.out.data());
  self->flush(*st.hdl);
  st.last_sent = self->clock().now();
}

// Ends the current connection (telling the primary why, unless it told us)
// and dials again later.
void drop_link(self_ptr self, const status& why, bool send_error) {
  auto& st = self->state;
  if (!st.hdl) return;
  st.last_error = why.to_string();
  if (send_error) write_frame(self, wire_format::make_error_frame(why));
  self->close(*st.hdl);
  st.hdl.reset();
  st.session.reset();
  st.snapshot_expected = false;
  st.snapshot.reset();
  ++st.generation;
  self->send(st.applier, connected_atom_v, false, uint64_t{0}, st.last_error);
  schedule_dial(self);
}

void schedule_dial(self_ptr self) {
  auto& st = self->state;
  auto delay =
      st.failures == 0 ? caf::timespan{0} : backoff_delay(st.cfg.reconnect, st.failures, st.rng);
  ++st.failures;
  if (delay.count() == 0)
    self->send(self, caf::connect_atom_v, st.generation);
  else
    self->delayed_send(self, delay, caf::connect_atom_v, st.generation);
}

void dial(self_ptr self, uint64_t start) {
  auto& st = self->state;
  auto hdl = self->add_tcp_scribe(st.cfg.host, st.cfg.port);
  if (!hdl) {
    st.last_error = "cannot connect to " + st.cfg.host + ":" + std::to_string(st.cfg.port);
    self->send(st.applier, connected_atom_v, false, uint64_t{0}, st.last_error);
    schedule_dial(self);
    return;
  }
  st.hdl = *hdl;
  st.reader.emplace(codec::handshake_max_frame_bytes);
  st.encoder.emplace(codec::handshake_max_frame_bytes);
  st.handshake = std::make_unique<wire_format::replica_handshake>(st.cfg.handshake);
  st.last_heard = st.last_sent = self->clock().now();
  self->configure_read(*hdl, io::receive_policy::exactly(st.reader->next_read()));
  send_without_delay(self, *hdl);
  auto hello = st.handshake->make_hello(start);
  if (!hello) return drop_link(self, hello.error(), false);
  write_frame(self, *hello);
  self->delayed_send(self, 100ms, caf::tick_atom_v, st.generation);
}

void on_handshake_frame(self_ptr self, const wire::Frame& frame) {
  auto& st = self->state;
  auto step = st.handshake->on_frame(frame);
  if (!step) return drop_link(self, step.error(), !st.handshake->peer_refused());
  if (step->reply) write_frame(self, *step->reply);
  if (!step->session) return;
  st.session = std::move(step->session);
  st.encoder->set_max_frame_bytes(st.session->send_max_frame_bytes);
  st.reader->set_max_frame_bytes(st.session->receive_max_frame_bytes);
  st.failures = 0;
  st.last_error.clear();
  st.snapshot_expected = st.session->snapshot_follows;
  self->send(st.applier, connected_atom_v, true, st.session->last_sequence);
}

// SnapshotBegin, Chunk, End (docs/protocol.md §7): checked here (order,
// offsets, length, CRC32C) and handed to the applier as snapshot_pieces.
status on_snapshot_frame(self_ptr self, wire::Frame& frame) {
  auto& st = self->state;
  auto violation = [](std::string what) { return status{errc::protocol_violation, what}; };
  if (!st.snapshot_expected)
    return violation(std::string(wire_format::frame_name(frame)) +
                     " without Welcome.snapshot_follows");
  snapshot_piece piece;
  switch (frame.body_case()) {
    case wire::Frame::kSnapshotBegin: {
      auto& begin = frame.snapshot_begin();
      if (st.snapshot) return violation("a second SnapshotBegin before SnapshotEnd");
      if (begin.snapshot_sequence() + 1 < st.session->start_sequence)
        return violation("the snapshot at sequence " + std::to_string(begin.snapshot_sequence()) +
                         " is older than the sequence " +
                         std::to_string(st.session->start_sequence) + " this replica asked for");
      piece.step = snapshot_piece::begin;
      piece.sequence = begin.snapshot_sequence();
      piece.total_bytes = begin.total_bytes();
      st.snapshot = piece;
      st.snapshot_crc = 0;
      break;
    }
    case wire::Frame::kSnapshotChunk: {
      auto& chunk = *frame.mutable_snapshot_chunk();
      if (!st.snapshot) return violation("SnapshotChunk before SnapshotBegin");
      auto& snap = *st.snapshot;
      if (chunk.offset() != snap.offset || chunk.data().empty() ||
          chunk.data().size() > snap.total_bytes - snap.offset)
        return violation("SnapshotChunk of " + std::to_string(chunk.data().size()) +
                         " bytes at offset " + std::to_string(chunk.offset()) + "; expected " +
                         std::to_string(snap.offset) + " and at most " +
                         std::to_string(snap.total_bytes - snap.offset) + " bytes");
      st.snapshot_crc = crc32c::extend(st.snapshot_crc, chunk.data().data(), chunk.data().size());
      piece.step = snapshot_piece::chunk;
      piece.sequence = snap.sequence;
      piece.total_bytes = snap.total_bytes;
      piece.offset = snap.offset;
      snap.offset += chunk.data().size();
      piece.data = std::move(*chunk.mutable_data());
      break;
    }
    default: {  // SnapshotEnd
      auto& end = frame.snapshot_end();
      if (!st.snapshot) return violation("SnapshotEnd before SnapshotBegin");
      auto& snap = *st.snapshot;
      if (end.total_bytes() != snap.total_bytes || snap.offset != snap.total_bytes)
        return violation("SnapshotEnd after " + std::to_string(snap.offset) + " of " +
                         std::to_string(snap.total_bytes) + " bytes (End says " +
                         std::to_string(end.total_bytes()) + ")");
      if (end.crc32c() != st.snapshot_crc)
        return status{errc::checksum_mismatch,
                      "snapshot at sequence " + std::to_string(snap.sequence) +
                          ": crc32c of the received bytes differs from SnapshotEnd"};
      piece.step = snapshot_piece::end;
      piece.sequence = snap.sequence;
      piece.total_bytes = snap.total_bytes;
      piece.offset = snap.offset;
      st.snapshot.reset();
      st.snapshot_expected = false;
      break;
    }
  }
  self->send(st.applier, std::move(piece));
  return ok_status();
}

void on_session_frame(self_ptr self, wire::Frame& frame) {
  auto& st = self->state;
  if (auto allowed = wire_format::check_session_frame(frame, wire_format::peer_role::primary);
      !allowed.ok())
    return drop_link(self, allowed, true);
  switch (frame.body_case()) {
    case wire::Frame::kSnapshotBegin:
    case wire::Frame::kSnapshotChunk:
    case wire::Frame::kSnapshotEnd: {
      if (auto handled = on_snapshot_frame(self, frame); !handled.ok())
        return drop_link(self, handled, true);
      return;
    }
    case wire::Frame::kBatch: {
      if (st.snapshot_expected)
        return drop_link(self, status{errc::protocol_violation, "Batch before the snapshot ended"},
                         true);
      auto b = wire_format::from_wire(std::move(*frame.mutable_batch()), st.session->limits());
      if (!b) return drop_link(self, b.error(), true);
      self->send(st.applier, std::move(*b));
      return;
    }
    case wire::Frame::kHeartbeat: {
      auto hb = wire_format::from_wire(frame.heartbeat());
      self->send(st.applier, connected_atom_v, true, hb.last_sequence);
      return;
    }
    case wire::Frame::kError: return drop_link(self, wire_format::from_wire(frame.error()), false);
    default:
      return drop_link(self,
                       status{errc::protocol_violation,
                              std::string(wire_format::frame_name(frame)) + " is not supported"},
                       true);
  }
}

// One whole frame body, read into `body`.
void on_frame(self_ptr self, std::vector<char>&& body) {
  auto& st = self->state;
  std::string_view view{body.data(), body.size()};
  // The buffer goes back to the pool when the last holder lets go: here, or
  // the applier once done with the batch it holds.
  auto owner = st.buffers->share(std::move(body));
  if (st.session && !st.snapshot_expected) {
    // A Batch, as every primary of this version sends it: parsed in place.
    auto parsed = wire_format::parse_batch_frame(view, owner, st.session->limits());
    if (!parsed) return drop_link(self, parsed.error(), true);
    if (*parsed) return self->send(st.applier, std::move(**parsed));
  }
  wire::Frame frame;
  if (auto decoded = wire_format::decode_frame(view, frame); !decoded.ok())
    return drop_link(self, decoded, true);
  if (st.session)
    on_session_frame(self, frame);
  else
    on_handshake_frame(self, frame);
}

// A read of exactly the size asked for: a frame's header, or its body.
void on_data(self_ptr self, io::new_data_msg& msg) {
  auto& st = self->state;
  if (!st.hdl || msg.handle != *st.hdl) return;
  st.last_heard = self->clock().now();
  auto whole = st.reader->on_read(msg.buf.data(), msg.buf.size());
  if (!whole) return drop_link(self, whole.error(), true);
  // CAF reads the next piece into whatever msg.buf holds when this returns.
  auto next = st.reader->next_read();
  self->configure_read(msg.handle, io::receive_policy::exactly(next));
  if (!*whole) {
    st.header = st.buffers->take(next);
    std::swap(st.header, msg.buf);
    return;
  }
  std::vector<char> body;
  std::swap(body, msg.buf);
  std::swap(msg.buf, st.header);
  on_frame(self, std::move(body));
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  uint32_t interval_ms =
      st.session ? st.session->heartbeat_interval_ms : wire_format::default_heartbeat_interval_ms;
  auto timeout = std::chrono::milliseconds(wire_format::peer_timeout_ms(interval_ms));
  // Inside a frame (its body is read whole) the primary is heard while its
  // bytes arrive: a large frame on a slow link may take longer than timeout.
  if (now - st.last_heard >= timeout && st.reader->inside_frame())
    if (auto since = since_data_received(self, *st.hdl); since && *since < timeout)
      st.last_heard = std::max(st.last_heard, now - *since);
  if (now - st.last_heard >= timeout)
    return drop_link(self,
                     status{errc::peer_timeout, "the primary was silent for " +
                                                    std::to_string(timeout.count()) + " ms"},
                     true);
  if (st.session && now - st.last_sent >= std::chrono::milliseconds(interval_ms))
    write_frame(self, wire_format::make_frame(wire_format::heartbeat{wall_clock_us(), st.durable}));
  self->delayed_send(self, std::chrono::milliseconds(interval_ms) / 2, caf::tick_atom_v,
                     st.generation);
}

caf::behavior connector(self_ptr self, connector_config cfg, applier_actor applier) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.applier = std::move(applier);
  st.rng.seed(st.cfg.seed != 0 ? st.cfg.seed : std::random_device{}());
  schedule_dial(self);
  return {
      [self](caf::connect_atom, uint64_t generation) {
        auto& s = self->state;
        if (generation != s.generation || s.hdl) return;
        // Resume exactly after what the replica holds durably.
        self->request(s.applier, 5s, status_atom_v)
            .then(
                [self, generation](const replica_status& rs) {
                  auto& s2 = self->state;
                  if (generation != s2.generation || s2.hdl) return;
                  s2.durable = rs.durable_sequence;
                  dial(self, rs.durable_sequence + 1);
                },
                [self](caf::error& err) { self->quit(std::move(err)); });
      },
      [self](io::new_data_msg& msg) { on_data(self, msg); },
      [self](caf::tick_atom, uint64_t generation) {
        if (generation == self->state.generation && self->state.hdl) on_tick(self);
      },
      [self](ack_atom, const ack& a) {
        auto& s = self->state;
        s.durable = a.durable_sequence;
        if (s.session) write_frame(self, wire_format::make_frame(a));
      },
      [self](nack_atom, const nack& n) {
        auto& s = self->state;
        if (!s.session) return;
        // During a snapshot the applier refuses with a nack: end the link.
        if (s.snapshot_expected) return drop_link(self, status{n.code, n.reason}, true);
        write_frame(self, wire_format::make_frame(n));
      },
      [self](const io::connection_closed_msg& msg) {
        auto& s = self->state;
        if (!s.hdl || msg.handle != *s.hdl) return;
        drop_link(self, status{errc::io_error, "the primary closed the connection"}, false);
      },
  };
}

}  // namespace

caf::actor spawn_connector(caf::actor_system& sys, connector_config cfg, applier_actor applier) {
  return sys.middleman().spawn_broker(connector, std::move(cfg), std::move(applier));
}

transport_factory network_transport(connector_config cfg) {
  return [cfg](caf::actor_system& sys, applier_actor applier) {
    return spawn_connector(sys, cfg, std::move(applier));
  };
}

}  // namespace walrus
