// The HTTP side of --metrics-port: a CAF broker, like the RESP broker, so it
// shares the middleman's I/O thread, asks the replication actors with
// request/then as the RESP broker does for INFO, and stops with the node.
//
// HTTP/1.1, one request per connection: GET (or HEAD) /metrics answers 200
// with the exposition text, another path 404, another method 405, a request
// head that is malformed or larger than max_head_bytes 400; every answer
// ends with "Connection: close" and a close. Bounds: max_connections at
// once (more are closed at once), and a connection that has not sent a whole
// request head within head_timeout is closed.
#include <chrono>
#include <string_view>
#include <unordered_map>

#include "apps/kv/metrics.hpp"
#include "apps/kv/server_internal.hpp"
#include "caf/io/broker.hpp"
#include "caf/io/middleman.hpp"
#include "caf/stateful_actor.hpp"
#include "messages/error.hpp"

namespace walrus::kv::server {

namespace {

using caf::io::accept_handle;
using caf::io::connection_handle;

constexpr size_t max_connections = 16;
constexpr size_t max_head_bytes = 8192;
constexpr size_t read_chunk_bytes = 4096;
constexpr auto head_timeout = std::chrono::seconds(10);
// Each source of a scrape answers within this, or its metrics are left out.
constexpr auto source_timeout = std::chrono::seconds(2);
constexpr const char* walrus_version = "0.1.0";

struct http_connection {
  uint64_t id = 0;
  std::string head;       // bytes received, up to the end of the request head
  bool answered = false;  // a request was taken: ignore further bytes
};

struct metrics_state {
  std::shared_ptr<node_context> node;
  caf::actor resp;
  accept_handle doorman;
  bool listening = false;
  uint16_t port = 0;
  std::string listen_error;
  std::unordered_map<connection_handle, http_connection> conns;
  uint64_t next_id = 1;
  static inline const char* name = "walrus-kv-metrics";
};

using broker_ptr = caf::io::stateful_broker<metrics_state>*;

// One scrape in progress: its snapshot and the answers still outstanding.
struct scrape {
  connection_handle hdl;
  uint64_t conn_id = 0;
  bool head_only = false;
  size_t pending = 0;
  metrics_snapshot snapshot;
};

using scrape_ptr = std::shared_ptr<scrape>;

void respond(broker_ptr self, connection_handle hdl, std::string_view status,
             std::string_view content_type, const std::string& body, bool head_only) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  if (status.substr(0, 3) == "405") out += "\r\nAllow: GET, HEAD";
  out += "\r\nConnection: close\r\n\r\n";
  if (!head_only) out += body;
  auto& buf = self->wr_buf(hdl);
  buf.insert(buf.end(), out.begin(), out.end());
  self->flush(hdl);
  self->close(hdl);  // unwritten data is still sent
  self->state.conns.erase(hdl);
}

void respond_error(broker_ptr self, connection_handle hdl, std::string_view status) {
  respond(self, hdl, status, "text/plain; charset=utf-8", std::string{status} + "\n", false);
}

// A source answered (or failed): when it was the last, send the text.
void settle(broker_ptr self, const scrape_ptr& s) {
  if (--s->pending > 0) return;
  auto i = self->state.conns.find(s->hdl);
  if (i == self->state.conns.end() || i->second.id != s->conn_id) return;  // the client left
  respond(self, s->hdl, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
          render_metrics(s->snapshot), s->head_only);
}

// The restarts of replica R's session supervisor [tailer, batcher].
void ask_session(broker_ptr self, const scrape_ptr& s, const std::string& replica) {
  ++s->pending;
  self->request(self->state.node->primary, source_timeout, child_atom_v, "session@" + replica)
      .then(
          [=](caf::actor& handle) {
            if (!handle) return settle(self, s);
            auto sup = caf::actor_cast<supervisor_actor>(handle);
            self->request(sup, source_timeout, status_atom_v)
                .then(
                    [=](supervisor_status& st) {
                      for (auto& c : st.children)
                        s->snapshot.restarts.push_back({c.name + "@" + replica, c.restarts});
                      settle(self, s);
                    },
                    [=](caf::error&) { settle(self, s); });
          },
          [=](caf::error&) { settle(self, s); });
}

void ask_replication(broker_ptr self, const scrape_ptr& s) {
  auto& node = *self->state.node;
  ++s->pending;
  if (node.role == node_role::primary) {
    self->request(node.primary, source_timeout, status_atom_v)
        .then(
            [=](primary_status& st) {
              for (auto& r : st.replicas) ask_session(self, s, r.replica_id);
              s->snapshot.primary_view = std::move(st);
              settle(self, s);
            },
            [=](caf::error&) { settle(self, s); });
    return;
  }
  self->request(node.replica, source_timeout, status_atom_v)
      .then(
          [=](replica_status& st) {
            s->snapshot.restarts.push_back({"applier", st.applier_restarts});
            s->snapshot.restarts.push_back({"transport", st.transport_restarts});
            s->snapshot.replica_view = std::move(st);
            settle(self, s);
          },
          [=](caf::error&) { settle(self, s); });
}

void start_scrape(broker_ptr self, connection_handle hdl, uint64_t conn_id, bool head_only) {
  auto& node = *self->state.node;
  auto s = std::make_shared<scrape>();
  s->hdl = hdl;
  s->conn_id = conn_id;
  s->head_only = head_only;
  auto& snap = s->snapshot;
  snap.primary = node.role == node_role::primary;
  snap.version = walrus_version;
  snap.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - node.started).count();
  snap.wal_first_sequence = node.log->first_sequence();
  snap.wal_last_sequence = node.log->last_sequence();
  snap.wal_durable_sequence = node.log->durable_sequence();
  snap.wal_size_bytes = node.log->retained_bytes();
  s->pending = 1;  // held until every request below is issued
  if (self->state.resp) {
    ++s->pending;
    self->request(self->state.resp, source_timeout, status_atom_v)
        .then(
            [=](uint64_t clients, uint64_t commands) {
              s->snapshot.connected_clients = clients;
              s->snapshot.commands_processed = commands;
              settle(self, s);
            },
            [=](caf::error&) { settle(self, s); });
  }
  ask_replication(self, s);
  settle(self, s);
}

// Handles a whole request head: "METHOD TARGET HTTP/1.x" and header lines.
void handle_head(broker_ptr self, connection_handle hdl, http_connection& conn,
                 std::string_view head) {
  conn.answered = true;
  auto line_end = head.find_first_of("\r\n");
  auto line = head.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return respond_error(self, hdl, "400 Bad Request");
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  bool token = !method.empty();
  for (char c : method) token = token && c >= 'A' && c <= 'Z';
  if (!token || target.empty() || target[0] != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0"))
    return respond_error(self, hdl, "400 Bad Request");
  for (char c : head)
    if ((c < ' ' && c != '\r' && c != '\n' && c != '\t') || c == 127)
      return respond_error(self, hdl, "400 Bad Request");
  auto path = target.substr(0, target.find('?'));
  if (path != "/metrics") return respond_error(self, hdl, "404 Not Found");
  if (method != "GET" && method != "HEAD")
    return respond_error(self, hdl, "405 Method Not Allowed");
  start_scrape(self, hdl, conn.id, method == "HEAD");
}

void on_data(broker_ptr self, const caf::io::new_data_msg& msg) {
  auto i = self->state.conns.find(msg.handle);
  if (i == self->state.conns.end() || i->second.answered) return;
  auto& conn = i->second;
  conn.head.append(msg.buf.data(), msg.buf.size());
  // The head ends with an empty line (bare LF tolerated, RFC 9112 2.2).
  auto end = conn.head.find("\r\n\r\n");
  size_t end_size = 4;
  if (auto lf = conn.head.find("\n\n"); lf != std::string::npos && lf < end) {
    end = lf;
    end_size = 2;
  }
  if (end == std::string::npos) {
    if (conn.head.size() > max_head_bytes) respond_error(self, msg.handle, "400 Bad Request");
    return;
  }
  if (end + end_size > max_head_bytes) return respond_error(self, msg.handle, "400 Bad Request");
  std::string head = conn.head.substr(0, end + end_size);
  handle_head(self, msg.handle, conn, head);
}

caf::behavior metrics_server(broker_ptr self, std::shared_ptr<node_context> node, uint16_t port,
                             caf::actor resp) {
  auto& st = self->state;
  st.node = std::move(node);
  st.resp = std::move(resp);
  auto& bind = st.node->opts.bind;
  if (auto listening = self->add_tcp_doorman(port, bind.c_str(), true)) {
    st.doorman = listening->first;
    st.port = listening->second;
    st.listening = true;
  } else {
    st.listen_error = "cannot listen for metrics scrapes on " + bind + ":" + std::to_string(port) +
                      ": " + self->system().render(listening.error());
  }
  return {
      [=](caf::get_atom) -> caf::result<uint16_t> {
        if (!self->state.listening) {
          auto err = make_error(errc::io_error, self->state.listen_error);
          self->quit(err);
          return err;
        }
        return self->state.port;
      },
      [=](const caf::io::new_connection_msg& msg) {
        auto& s = self->state;
        if (s.conns.size() >= max_connections) {
          self->close(msg.handle);
          return;
        }
        auto id = s.next_id++;
        s.conns[msg.handle].id = id;
        self->configure_read(msg.handle, caf::io::receive_policy::at_most(read_chunk_bytes));
        self->delayed_send(self, head_timeout, caf::timeout_atom_v, id);
      },
      [=](const caf::io::new_data_msg& msg) { on_data(self, msg); },
      [=](const caf::io::connection_closed_msg& msg) { self->state.conns.erase(msg.handle); },
      [=](const caf::io::acceptor_closed_msg&) { self->state.listening = false; },
      [=](caf::timeout_atom, uint64_t id) {
        auto& conns = self->state.conns;
        for (auto i = conns.begin(); i != conns.end(); ++i) {
          if (i->second.id != id || i->second.answered) continue;
          self->close(i->first);
          conns.erase(i);
          return;
        }
      },
  };
}

}  // namespace

caf::actor spawn_metrics_server(caf::actor_system& sys, std::shared_ptr<node_context> node,
                                uint16_t port, caf::actor resp) {
  return sys.middleman().spawn_broker(metrics_server, std::move(node), port, std::move(resp));
}

}  // namespace walrus::kv::server
