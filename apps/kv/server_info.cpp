// INFO and ROLE of walrus-kv, from the node and its replication status
// (docs/operations.md lists every field).
#include <unistd.h>

#include <cstdio>

#include "apps/kv/resp.hpp"
#include "apps/kv/server_internal.hpp"
#include "codec/codec.hpp"

namespace walrus::kv::server {

namespace {

constexpr const char* walrus_version = "0.1.0";

void field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name.data(), name.size());
  out += ':';
  out.append(value.data(), value.size());
  out += "\r\n";
}

void field(std::string& out, std::string_view name, uint64_t value) {
  field(out, name, std::to_string(value));
}

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

uint64_t now_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void server_section(std::string& out, const node_context& node) {
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 node.started)
                    .count();
  out += "# Server\r\n";
  field(out, "redis_version", "7.0.0");
  field(out, "walrus_version", walrus_version);
  field(out, "redis_mode", "standalone");
  field(out, "os", "Linux");
  field(out, "process_id", static_cast<uint64_t>(::getpid()));
  field(out, "run_id", node.run_id);
  field(out, "tcp_port", node.resp_port);
  field(out, "bind", node.opts.bind);
  field(out, "uptime_in_seconds", static_cast<uint64_t>(uptime));
  field(out, "uptime_in_days", static_cast<uint64_t>(uptime / 86400));
  field(out, "data_dir", node.opts.dir);
  field(out, "walrus_role", node.role == node_role::primary ? "primary" : "replica");
  out += "\r\n";
}

void clients_section(std::string& out, const node_context& node, const info_counters& c) {
  out += "# Clients\r\n";
  field(out, "connected_clients", c.connected_clients);
  field(out, "maxclients", node.opts.max_clients);
  field(out, "max_request_bytes", node.opts.max_request_bytes);
  out += "\r\n";
}

void persistence_section(std::string& out, const node_context& node) {
  auto stats = node.log->stats();
  auto health = node.log->health();
  out += "# Persistence\r\n";
  field(out, "loading", "0");
  field(out, "wal_dir", node.log->config().dir);
  field(out, "wal_sync", node.opts.sync.to_string());
  field(out, "wal_status", health.ok() ? "ok" : health.to_string());
  field(out, "wal_first_sequence", node.log->first_sequence());
  field(out, "wal_last_sequence", node.log->last_sequence());
  field(out, "wal_durable_sequence", node.log->durable_sequence());
  field(out, "wal_retained_bytes", node.log->retained_bytes());
  field(out, "wal_appends", stats.appends);
  field(out, "wal_records", stats.records);
  field(out, "wal_bytes_written", stats.bytes_written);
  field(out, "wal_fdatasyncs", stats.syncs);
  field(out, "store_applied_sequence", node.db->applied_sequence());
  if (node.snapshots != nullptr) {
    auto s = node.snapshots->stats();
    field(out, "rdb_bgsave_in_progress", s.in_progress ? "1" : "0");
    field(out, "rdb_last_save_time", s.last_unix_time);
    field(out, "rdb_changes_since_last_save",
          node.db->applied_sequence() > s.last_sequence
              ? node.db->applied_sequence() - s.last_sequence
              : 0);
    field(out, "snapshot_sequence", s.last_sequence);
    field(out, "snapshot_bytes", s.last_bytes);
    field(out, "snapshot_duration_ms", s.last_duration_ms);
    field(out, "snapshots_written", s.count);
    field(out, "snapshot_every_entries", node.opts.snapshot_entries);
    field(out, "snapshot_last_error", s.last_error.empty() ? "none" : s.last_error);
  }
  if (node.write != nullptr) {
    auto w = node.write->stats();
    field(out, "writer_rounds", w.rounds);
    field(out, "writer_commands", w.jobs);
    field(out, "writer_transactions", w.transactions);
    field(out, "writer_round_fdatasyncs", w.round_syncs);
    if (w.round_syncs > 0) {
      char ratio[32];
      std::snprintf(ratio, sizeof(ratio), "%.2f",
                    static_cast<double>(w.transactions) / static_cast<double>(w.round_syncs));
      field(out, "writer_transactions_per_fdatasync", ratio);
    }
    field(out, "writer_status", w.failure.empty() ? "ok" : w.failure);
  }
  field(out, "aof_enabled", "0");
  field(out, "rdb_bgsave_in_progress", "0");
  out += "\r\n";
}

void stats_section(std::string& out, const node_context& node, const info_counters& c) {
  out += "# Stats\r\n";
  field(out, "total_connections_received", c.total_connections);
  field(out, "rejected_connections", c.rejected_connections);
  field(out, "total_commands_processed", c.total_commands);
  field(out, "protocol_errors", c.protocol_errors);
  if (node.write != nullptr) field(out, "expired_keys", node.write->stats().expired_keys);
  out += "\r\n";
}

void primary_replication(std::string& out, const node_context& node, const primary_status& st) {
  size_t connected = 0;
  for (auto& r : st.replicas)
    if (r.link == "streaming" || r.link == "catching_up") ++connected;
  out += "# Replication\r\n";
  field(out, "role", "master");
  field(out, "connected_slaves", connected);
  field(out, "known_replicas", st.replicas.size());
  field(out, "replication_bind", node.opts.bind);
  field(out, "replication_port", node.repl_port);
  field(out, "replication_codec", codec::to_string(node.opts.codec));
  field(out, "cluster", node.opts.cluster_id);
  field(out, "master_repl_offset", st.last_sequence);
  field(out, "master_durable_sequence", st.durable_sequence);
  field(out, "master_first_retained_sequence", st.first_retained);
  auto now = now_us();
  for (size_t i = 0; i < st.replicas.size(); ++i) {
    auto& r = st.replicas[i];
    std::string v = "id=" + r.replica_id + ",state=" + r.link +
                    ",offset=" + std::to_string(r.applied_sequence) +
                    ",received=" + std::to_string(r.received_sequence) +
                    ",durable=" + std::to_string(r.durable_sequence) +
                    ",applied=" + std::to_string(r.applied_sequence) +
                    ",lag_entries=" + std::to_string(r.lag_entries) +
                    ",lag_bytes=" + std::to_string(r.lag_bytes) +
                    ",lag_ms=" + std::to_string(r.lag_ms) +
                    ",in_flight_bytes=" + std::to_string(r.in_flight_bytes) +
                    ",batches_sent=" + std::to_string(r.batches_sent) +
                    ",batch_bytes=" + std::to_string(r.batch_bytes) +
                    ",batch_wire_bytes=" + std::to_string(r.batch_wire_bytes);
    if (r.link_down_since_us != 0 && now > r.link_down_since_us)
      v += ",down_for_ms=" + std::to_string((now - r.link_down_since_us) / 1000);
    field(out, "slave" + std::to_string(i), v);
  }
  out += "\r\n";
}

void replica_replication(std::string& out, const node_context& node, const replica_status& st) {
  out += "# Replication\r\n";
  field(out, "role", "slave");
  field(out, "replica_id", node.replica_id);
  field(out, "master_host", node.opts.primary_host);
  field(out, "master_port", node.opts.primary_port);
  field(out, "master_link_status", replica_link_up(st.state) ? "up" : "down");
  field(out, "master_link_reconnects", st.link_reconnects);
  field(out, "master_sync_in_progress", st.state == replica_state::bootstrapping ? "1" : "0");
  field(out, "replica_state", lower(to_string(st.state)));
  if (!st.transitions.empty()) {
    auto at = st.transitions.back().at_us;
    auto now = now_us();
    field(out, "replica_state_since_ms", now > at ? (now - at) / 1000 : 0);
  }
  field(out, "cluster", node.opts.cluster_id);
  field(out, "slave_repl_offset", st.applied_sequence);
  field(out, "received_sequence", st.received_sequence);
  field(out, "durable_sequence", st.durable_sequence);
  field(out, "applied_sequence", st.applied_sequence);
  field(out, "master_sequence", st.primary_sequence);
  field(out, "lag_entries",
        st.primary_sequence > st.applied_sequence ? st.primary_sequence - st.applied_sequence : 0);
  field(out, "lag_ms", st.lag_ms);
  field(out, "applier_restarts", st.applier_restarts);
  field(out, "transport_restarts", st.transport_restarts);
  // Bootstrap by snapshot: the transfer in progress, or the last one.
  field(out, "master_sync_total_bytes", st.snapshot.total_bytes);
  field(out, "master_sync_read_bytes", st.snapshot.received_bytes);
  field(out, "master_sync_left_bytes", st.snapshot.total_bytes - st.snapshot.received_bytes);
  field(out, "master_sync_snapshot_sequence", st.snapshot.sequence);
  field(out, "snapshots_installed", st.snapshot.installed);
  field(out, "slave_read_only", "1");
  field(out, "last_error", st.last_error.empty() ? "none" : st.last_error);
  out += "\r\n";
}

void keyspace_section(std::string& out, const node_context& node) {
  out += "# Keyspace\r\n";
  auto [keys, expires] = node.db->count_live(node.time->now_ms());
  if (keys > 0)
    field(out, "db0",
          "keys=" + std::to_string(keys) + ",expires=" + std::to_string(expires) + ",avg_ttl=0");
  out += "\r\n";
}

}  // namespace

bool replica_link_up(replica_state state) {
  switch (state) {
    case replica_state::streaming:
    case replica_state::applying:
    case replica_state::syncing:
    case replica_state::acknowledging:
    case replica_state::waiting_for_data: return true;
    default: return false;
  }
}

std::string info_text(const node_context& node, const info_counters& counters,
                      const primary_status* primary, const replica_status* replica,
                      std::string_view section) {
  auto s = lower(section);
  bool all = s == "default" || s == "all" || s == "everything";
  std::string out;
  if (all || s == "server") server_section(out, node);
  if (all || s == "clients") clients_section(out, node, counters);
  if (all || s == "persistence") persistence_section(out, node);
  if (all || s == "stats") stats_section(out, node, counters);
  if (all || s == "replication") {
    if (primary != nullptr) primary_replication(out, node, *primary);
    if (replica != nullptr) replica_replication(out, node, *replica);
  }
  if (all || s == "keyspace") keyspace_section(out, node);
  // Sections are separated by an empty line; the last one is dropped.
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0)
    out.resize(out.size() - 2);
  return out;
}

void append_role(std::string& out, const node_context& node, const primary_status* primary,
                 const replica_status* replica) {
  if (primary != nullptr) {
    resp::append_array_header(out, 3);
    resp::append_bulk(out, "master");
    resp::append_integer(out, static_cast<int64_t>(primary->last_sequence));
    resp::append_array_header(out, primary->replicas.size());
    for (auto& r : primary->replicas) {
      resp::append_array_header(out, 3);
      resp::append_bulk(out, r.replica_id);
      resp::append_bulk(out, r.link);
      resp::append_bulk(out, std::to_string(r.applied_sequence));
    }
    return;
  }
  resp::append_array_header(out, 5);
  resp::append_bulk(out, "slave");
  resp::append_bulk(out, node.opts.primary_host);
  resp::append_integer(out, node.opts.primary_port);
  const char* state = "connect";
  if (replica != nullptr) {
    if (replica->state == replica_state::connecting)
      state = "connecting";
    else if (replica->state == replica_state::bootstrapping)
      state = "sync";
    else if (replica_link_up(replica->state))
      state = "connected";
  }
  resp::append_bulk(out, state);
  resp::append_integer(out, static_cast<int64_t>(replica ? replica->applied_sequence : 0));
}

}  // namespace walrus::kv::server
