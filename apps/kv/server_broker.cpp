// The RESP side of walrus-kv: one CAF broker for every client connection.
// (CAF 0.17 runs every broker on the middleman's I/O thread, so one broker
// per client would not add parallelism, only messages.)
//
// Per connection: a request_parser (pipelining: every complete request of a
// read is handled at once), a queue of reply slots so replies leave in
// request order, and back-pressure: while 1024 replies are pending or 16 MiB
// of replies are unsent, the broker stops reading that connection.
//
// Routing, on a primary: writes go to the writer; a read of a connection
// that still has writes at the writer goes there too (so it sees them);
// other reads and connection commands run here on the store. On a replica
// everything runs here (writes get READONLY from the command layer). INFO,
// ROLE and WAIT ask the replication actors; WAIT first waits until the
// connection's earlier writes have sequences, and blocks the connection
// until it is answered (as Redis does).
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <unordered_map>

#include "actors/read_sizer.hpp"
#include "actors/socket_options.hpp"
#include "apps/kv/resp.hpp"
#include "apps/kv/server_internal.hpp"
#include "caf/io/broker.hpp"
#include "caf/io/middleman.hpp"
#include "caf/io/network/multiplexer.hpp"
#include "caf/send.hpp"
#include "caf/stateful_actor.hpp"
#include "messages/error.hpp"

namespace walrus::kv::server {

namespace {

using caf::io::accept_handle;
using caf::io::connection_handle;

// Each connection reads at most this much at once (read_sizer adapts it).
constexpr size_t min_read_bytes = 4 * 1024;
constexpr size_t max_read_bytes = 64 * 1024;
constexpr size_t max_pending_replies = 1024;
constexpr uint64_t max_unsent_bytes = 16 * 1024 * 1024;
// Request bytes of one connection at the writer (one request may exceed it).
constexpr uint64_t max_job_bytes = 32 * 1024 * 1024;
// WAIT numreplicas 0 blocks forever in Redis; here: 30 days.
constexpr auto wait_forever = std::chrono::hours(24 * 30);

struct slot {
  bool ready = false;
  std::string data;
};

struct connection {
  explicit connection(resp::parser_limits limits) : parser(limits) {}

  resp::request_parser parser;
  read_sizer reads{min_read_bytes, max_read_bytes};
  bool parser_drained = true;  // the last next() found no complete request: feed() allowed
  std::string pending_input;   // bytes read while the parser still held requests
  session client;
  std::deque<slot> slots;    // replies not yet sent, in request order
  uint64_t first_slot = 0;   // id of slots.front()
  uint64_t writer_jobs = 0;  // commands of this connection at the writer
  uint64_t job_bytes = 0;    // ... and the size of their arguments
  bool waiting = false;      // a WAIT is outstanding: the connection is blocked
  bool stashed = false;      // `stash` holds a WAIT that waits for writer_jobs == 0
  std::vector<std::string> stash;
  bool closing = false;             // QUIT, a protocol error or shutdown: no more requests
  bool reading = true;              // what CAF was last told: trigger() (true) or halt()
  bool reading_update_due = false;  // an update_atom is on its way (see set_reading)
  uint64_t last_sequence = 0;       // of this client's last write (WAIT)
  uint64_t queued_bytes = 0;        // reply bytes handed to the socket
  uint64_t sent_bytes = 0;          // ... of which were written
  int fd = -1;                      // the socket, for write_out (-1: CAF writes everything)
  bool unflushed = false;           // bytes in the write buffer since the last flush
};

struct resp_state {
  std::shared_ptr<node_context> node;
  std::unordered_map<connection_handle, connection> conns;
  accept_handle doorman;
  bool listening = false;
  std::string listen_error;
  bool stopping = false;
  uint64_t next_client_id = 1;
  job_batch jobs;  // collected while handling one message, then submitted
  std::vector<std::string_view> args;
  std::string reply;
  op_batch ops;
  info_counters counters;

  static inline const char* name = "walrus-kv-resp";
};

using broker_ptr = caf::io::stateful_broker<resp_state>*;

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void send_bytes(broker_ptr self, connection_handle hdl, connection& conn, std::string_view data) {
  auto& buf = self->wr_buf(hdl);
  buf.insert(buf.end(), data.begin(), data.end());
  conn.queued_bytes += data.size();
  conn.unflushed = true;
}

// A reply that is ready now: straight out when nothing is pending before it.
void emit(broker_ptr self, connection_handle hdl, connection& conn, const std::string& reply) {
  if (conn.slots.empty())
    send_bytes(self, hdl, conn, reply);
  else
    conn.slots.push_back(slot{true, reply});
}

uint64_t reserve(connection& conn) {
  conn.slots.emplace_back();
  return conn.first_slot + conn.slots.size() - 1;
}

void fill(broker_ptr self, connection_handle hdl, connection& conn, uint64_t id, std::string data) {
  if (id < conn.first_slot || id >= conn.first_slot + conn.slots.size()) return;
  auto& s = conn.slots[id - conn.first_slot];
  s.ready = true;
  s.data = std::move(data);
  while (!conn.slots.empty() && conn.slots.front().ready) {
    send_bytes(self, hdl, conn, conn.slots.front().data);
    conn.slots.pop_front();
    ++conn.first_slot;
  }
}

bool blocked(const connection& conn) {
  return conn.waiting || conn.slots.size() >= max_pending_replies ||
         conn.queued_bytes - conn.sent_bytes > max_unsent_bytes || conn.job_bytes > max_job_bytes;
}

void submit_jobs(broker_ptr self) {
  auto& st = self->state;
  if (!st.jobs.empty() && st.node->write != nullptr) st.node->write->submit(st.jobs);
}

// Whether the connection should be read from now. A stashed WAIT also stops
// reading: its connection takes no more input until the writes before it
// have sequences.
bool wants_input(const connection& conn) {
  return !conn.closing && !conn.stashed && !blocked(conn);
}

// Reading is switched on and off only by the (update_atom, hdl) handler,
// which this schedules for the multiplexer's next loop iteration. Why not
// halt()/trigger() at once: CAF 0.17 applies a stream's event changes at the
// end of the loop iteration, and stream::activate() does nothing while the
// stream still holds its reader. So halt() then trigger() in one iteration
// leaves the socket unread forever (the stall of 8 MiB pipelined SETs,
// kv_process.big_values), and trigger() then halt() cancel out in the event
// list but leave the reader set, with the same end. Posting to the
// multiplexer runs after that iteration's changes were applied; one switch
// per update keeps every switch in its own iteration.
void set_reading(broker_ptr self, connection_handle hdl, connection& conn) {
  if (wants_input(conn) == conn.reading || conn.reading_update_due) return;
  conn.reading_update_due = true;
  auto me = caf::actor_cast<caf::actor>(self);
  self->backend().post([me, hdl] { caf::anon_send(me, caf::update_atom_v, hdl); });
}

void quit_if_done(broker_ptr self) {
  if (self->state.stopping && self->state.conns.empty()) self->quit();
}

void handle_server(broker_ptr self, connection_handle hdl, connection& conn,
                   const std::vector<std::string_view>& args);

void dispatch(broker_ptr self, connection_handle hdl, connection& conn,
              const std::vector<std::string_view>& args) {
  auto& st = self->state;
  auto& node = *st.node;
  ++st.counters.total_commands;
  auto* spec = find_command(args[0]);
  if (node.role == node_role::primary && spec != nullptr &&
      ((spec->flags & flag_write) != 0 ||
       (conn.writer_jobs > 0 && (spec->flags & flag_readonly) != 0))) {
    auto size_before = st.jobs.bytes.size();
    st.jobs.add(hdl, conn.client.id, reserve(conn), args);
    ++conn.writer_jobs;
    conn.job_bytes += st.jobs.bytes.size() - size_before;
    return;
  }
  if (spec != nullptr && spec->name == "wait" && conn.writer_jobs > 0) {
    // WAIT needs the sequence of this client's writes still at the writer.
    conn.stash.assign(args.begin(), args.end());
    conn.stashed = true;
    return;
  }
  st.reply.clear();
  st.ops.clear();
  command_context ctx{*node.db, node.role, *node.time, &conn.client};
  switch (execute(args, ctx, st.reply, st.ops)) {
    case disposition::reply: emit(self, hdl, conn, st.reply); break;
    case disposition::close:
      emit(self, hdl, conn, st.reply);
      conn.closing = true;
      break;
    case disposition::server: handle_server(self, hdl, conn, args); break;
    case disposition::replicate:
      // Writes of a primary went to the writer; a replica's get READONLY.
      st.reply.clear();
      resp::append_error(st.reply, "ERR internal: write outside the writer");
      emit(self, hdl, conn, st.reply);
      break;
  }
}

// Handles the connection's requests until it blocks or needs more bytes;
// true when it stopped because blocked() (requests may be left).
bool process(broker_ptr self, connection_handle hdl, connection& conn) {
  auto& st = self->state;
  while (!conn.closing && !blocked(conn)) {
    if (conn.stashed) {
      if (conn.writer_jobs > 0) break;
      conn.stashed = false;
      std::vector<std::string> stash = std::move(conn.stash);
      conn.stash.clear();
      std::vector<std::string_view> views(stash.begin(), stash.end());
      dispatch(self, hdl, conn, views);
      continue;
    }
    auto next = conn.parser.next(st.args);
    if (!next.ok()) {
      ++st.counters.protocol_errors;
      st.reply.clear();
      resp::append_error(st.reply, "ERR " + next.error().message());
      emit(self, hdl, conn, st.reply);
      conn.closing = true;
      break;
    }
    if (!*next) {
      conn.parser_drained = true;
      if (conn.pending_input.empty()) break;
      conn.parser.feed(conn.pending_input);
      conn.pending_input.clear();
      conn.parser_drained = false;
      continue;
    }
    dispatch(self, hdl, conn, st.args);
    if (conn.stashed) continue;  // it may run at once when nothing is at the writer
  }
  return !conn.closing && blocked(conn);
}

// Sends the replies in the broker's write buffer. When CAF holds none of
// this connection's bytes (every unsent byte is still in that buffer, the
// usual case) they go out with one send() here: CAF 0.17 would register the
// socket for writing (epoll_ctl), write on its next loop, unregister it
// (epoll_ctl) and report back, about a tenth of the RESP thread under
// pipelined SETs. What the socket does not take at once, and any error
// (CAF's own write then reports it), is left to CAF as before.
void write_out(broker_ptr self, connection_handle hdl, connection& conn) {
  auto& buf = self->wr_buf(hdl);
  if (conn.fd >= 0 && !buf.empty() && conn.queued_bytes - conn.sent_bytes == buf.size()) {
    auto n = ::send(conn.fd, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      conn.sent_bytes += static_cast<uint64_t>(n);
      buf.erase(buf.begin(), buf.begin() + n);
    }
  }
  if (!buf.empty()) self->flush(hdl);
}

// After anything happened on a connection: run what can run, send what is
// ready, adjust reading, close when done.
void service(broker_ptr self, connection_handle hdl) {
  auto& st = self->state;
  auto it = st.conns.find(hdl);
  if (it == st.conns.end()) return;
  auto& conn = it->second;
  for (;;) {
    bool held_back = process(self, hdl, conn);
    if (conn.unflushed) {
      write_out(self, hdl, conn);
      conn.unflushed = false;
    }
    // A direct send may have lifted the unsent-bytes limit that stopped
    // process(); no data_transferred_msg will come for those bytes.
    if (!held_back || blocked(conn)) break;
  }
  set_reading(self, hdl, conn);
  if (conn.closing) {
    if (conn.slots.empty()) {
      self->close(hdl);  // unsent replies still go out
      st.conns.erase(it);
      quit_if_done(self);
    }
  }
}

// The connection `hdl` if it is still the one with id `conn_id`. CAF 0.17's
// handles are socket descriptors, which the kernel reuses: a client that
// connects after another left may get its handle while the writer or a
// server request still works for the one that left.
connection* find_conn(broker_ptr self, connection_handle hdl, uint64_t conn_id) {
  auto it = self->state.conns.find(hdl);
  if (it == self->state.conns.end() || it->second.client.id != conn_id) return nullptr;
  return &it->second;
}

void finish_server_reply(broker_ptr self, connection_handle hdl, uint64_t conn_id, uint64_t id,
                         std::string reply, bool unblock) {
  auto* conn = find_conn(self, hdl, conn_id);
  if (conn == nullptr) return;
  if (unblock) conn->waiting = false;
  fill(self, hdl, *conn, id, std::move(reply));
  service(self, hdl);
  submit_jobs(self);
}

std::string error_reply(const std::string& text) {
  std::string out;
  std::string line = text;
  for (auto& c : line)
    if (c == '\r' || c == '\n') c = ' ';
  resp::append_error(out, "ERR " + line);
  return out;
}

void handle_server(broker_ptr self, connection_handle hdl, connection& conn,
                   const std::vector<std::string_view>& args) {
  auto& node = *self->state.node;
  auto name = lower(args[0]);
  auto id = reserve(conn);
  auto conn_id = conn.client.id;
  auto timeout = std::chrono::seconds(5);
  if (name == "bgsave") {
    std::string out;
    if (node.snapshots != nullptr && node.snapshots->request())
      resp::append_simple(out, "Background saving started");
    else
      resp::append_error(out, "ERR Background save already in progress");
    fill(self, hdl, conn, id, std::move(out));
    return;
  }
  if (name == "wait") {
    // execute() checked both integers and the role.
    int64_t wanted = std::strtoll(std::string{args[1]}.c_str(), nullptr, 10);
    int64_t ms = std::strtoll(std::string{args[2]}.c_str(), nullptr, 10);
    wait_request w;
    w.sequence = conn.last_sequence;
    w.replicas = static_cast<uint32_t>(std::clamp<int64_t>(wanted, 0, UINT32_MAX));
    w.level = ack_level::durable;
    w.timeout =
        ms == 0 ? caf::timespan{wait_forever} : caf::timespan{std::chrono::milliseconds(ms)};
    conn.waiting = true;
    auto sequence = w.sequence;
    self->request(node.primary, caf::infinite, wait_atom_v, w)
        .then(
            [=](uint32_t count) {
              std::string out;
              resp::append_integer(out, count);
              finish_server_reply(self, hdl, conn_id, id, std::move(out), true);
            },
            [=](caf::error& err) {
              if (err != errc::timeout) {
                finish_server_reply(self, hdl, conn_id, id, error_reply(render(err)), true);
                return;
              }
              // Timed out: answer how many did reach the sequence.
              self->request(self->state.node->primary, std::chrono::seconds(5), status_atom_v)
                  .then(
                      [=](primary_status& st) {
                        int64_t n = 0;
                        for (auto& r : st.replicas)
                          if (r.durable_sequence >= sequence) ++n;
                        std::string out;
                        resp::append_integer(out, n);
                        finish_server_reply(self, hdl, conn_id, id, std::move(out), true);
                      },
                      [=](caf::error& e) {
                        finish_server_reply(self, hdl, conn_id, id, error_reply(render(e)), true);
                      });
            });
    return;
  }
  bool info = name == "info";
  std::string section = "default";
  if (info && args.size() > 1) section = std::string{args[1]};
  auto answer = [=](const primary_status* p, const replica_status* r) {
    auto& st = self->state;
    std::string out;
    if (info) {
      auto counters = st.counters;
      counters.connected_clients = st.conns.size();
      resp::append_bulk(out, info_text(*st.node, counters, p, r, section));
    } else {
      append_role(out, *st.node, p, r);
    }
    finish_server_reply(self, hdl, conn_id, id, std::move(out), false);
  };
  auto failed = [=](caf::error& err) {
    finish_server_reply(self, hdl, conn_id, id, error_reply("replication status: " + render(err)),
                        false);
  };
  if (node.role == node_role::primary)
    self->request(node.primary, timeout, status_atom_v)
        .then([=](primary_status& st) { answer(&st, nullptr); }, failed);
  else
    self->request(node.replica, timeout, status_atom_v)
        .then([=](replica_status& st) { answer(nullptr, &st); }, failed);
}

caf::behavior resp_server(broker_ptr self, std::shared_ptr<node_context> node,
                          caf::timespan drain_timeout) {
  auto& st = self->state;
  st.node = std::move(node);
  auto& opts = st.node->opts;
  auto listening = self->add_tcp_doorman(opts.port, opts.bind.c_str(), true);
  if (listening) {
    st.doorman = listening->first;
    st.node->resp_port = listening->second;
    st.listening = true;
  } else {
    st.listen_error = "cannot listen for RESP clients on " + opts.bind + ":" +
                      std::to_string(opts.port) + ": " + self->system().render(listening.error());
  }
  return {
      [=](caf::get_atom) -> caf::result<uint16_t> {
        if (!self->state.listening) {
          auto err = make_error(errc::io_error, self->state.listen_error);
          self->quit(err);
          return err;
        }
        return self->state.node->resp_port;
      },
      [=](const caf::io::new_connection_msg& msg) {
        auto& st = self->state;
        ++st.counters.total_connections;
        if (st.stopping || st.conns.size() >= st.node->opts.max_clients) {
          ++st.counters.rejected_connections;
          static const std::string full = "-ERR max number of clients reached\r\n";
          static const std::string down = "-ERR server is shutting down\r\n";
          auto& text = st.stopping ? down : full;
          auto& buf = self->wr_buf(msg.handle);
          buf.insert(buf.end(), text.begin(), text.end());
          self->flush(msg.handle);
          self->close(msg.handle);
          return;
        }
        resp::parser_limits limits;
        limits.max_request_bytes = st.node->opts.max_request_bytes;
        auto [it, added] =
            st.conns.emplace(std::piecewise_construct, std::forward_as_tuple(msg.handle),
                             std::forward_as_tuple(limits));
        assert(added);
        (void)added;
        it->second.client.id = st.next_client_id++;
        it->second.fd = socket_of(self, msg.handle);
        self->configure_read(msg.handle, caf::io::receive_policy::at_most(it->second.reads.size()));
        self->ack_writes(msg.handle, true);
      },
      [=](const caf::io::new_data_msg& msg) {
        auto& st = self->state;
        auto it = st.conns.find(msg.handle);
        if (it == st.conns.end()) return;
        auto& conn = it->second;
        if (conn.closing) return;
        if (conn.reads.observe(msg.buf.size()))
          self->configure_read(msg.handle, caf::io::receive_policy::at_most(conn.reads.size()));
        std::string_view piece{msg.buf.data(), msg.buf.size()};
        if (conn.parser_drained && conn.pending_input.empty()) {
          conn.parser.feed(piece);
          conn.parser_drained = false;
        } else {
          conn.pending_input.append(piece.data(), piece.size());
        }
        service(self, msg.handle);
        submit_jobs(self);
      },
      [=](const caf::io::data_transferred_msg& msg) {
        auto& st = self->state;
        auto it = st.conns.find(msg.handle);
        if (it == st.conns.end()) return;
        it->second.sent_bytes += msg.written;
        // Written bytes may unblock the connection: run what it holds. (Not
        // only while reading is off: the switch is posted, and the parser
        // may hold requests that the unsent-bytes limit held back.)
        service(self, msg.handle);
        submit_jobs(self);
      },
      [=](caf::update_atom, connection_handle hdl) {
        // The switch set_reading() scheduled: apply what is wanted now.
        auto it = self->state.conns.find(hdl);
        if (it == self->state.conns.end()) return;
        auto& conn = it->second;
        conn.reading_update_due = false;
        bool want = wants_input(conn);
        if (want != conn.reading) {
          conn.reading = want;
          if (want)
            self->trigger(hdl);
          else
            self->halt(hdl);
        }
        // Whatever unblocked it may have left parsed requests waiting.
        if (want) {
          service(self, hdl);
          submit_jobs(self);
        }
      },
      [=](const caf::io::connection_closed_msg& msg) {
        self->state.conns.erase(msg.handle);
        quit_if_done(self);
      },
      [=](const caf::io::acceptor_closed_msg&) { self->state.listening = false; },
      // For the metrics endpoint: connected clients and commands processed.
      [=](status_atom) {
        auto& st = self->state;
        return caf::make_message(static_cast<uint64_t>(st.conns.size()),
                                 st.counters.total_commands);
      },
      [=](writer_round& round) {
        std::vector<connection_handle> touched;
        for (auto& d : round.done) {
          auto* found = find_conn(self, d.hdl, d.conn_id);
          if (found == nullptr) continue;  // its client left
          auto& conn = *found;
          --conn.writer_jobs;
          conn.job_bytes -= d.request_bytes;
          if (d.write) conn.last_sequence = std::max(conn.last_sequence, d.sequence);
          fill(self, d.hdl, conn, d.slot, std::move(d.reply));
          if (touched.empty() || touched.back() != d.hdl) touched.push_back(d.hdl);
        }
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (auto hdl : touched) service(self, hdl);
        submit_jobs(self);
      },
      [=](stop_atom) {
        auto& st = self->state;
        if (st.stopping) return;
        st.stopping = true;
        if (st.listening) {
          self->close(st.doorman);
          st.listening = false;
        }
        std::vector<connection_handle> all;
        for (auto& [hdl, conn] : st.conns) {
          conn.closing = true;
          conn.stashed = false;
          conn.pending_input.clear();
          all.push_back(hdl);
        }
        for (auto hdl : all) service(self, hdl);
        quit_if_done(self);
        self->delayed_send(self, drain_timeout, caf::timeout_atom_v);
      },
      [=](caf::timeout_atom) {
        // Drain deadline: close whatever is still waiting for a reply.
        auto& st = self->state;
        for (auto& [hdl, conn] : st.conns) self->close(hdl);
        st.conns.clear();
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_resp_server(caf::actor_system& sys, std::shared_ptr<node_context> node,
                             caf::timespan drain_timeout) {
  return sys.middleman().spawn_broker(resp_server, std::move(node), drain_timeout);
}

}  // namespace walrus::kv::server
