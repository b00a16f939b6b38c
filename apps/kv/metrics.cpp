// The Prometheus text of a walrus-kv node (exposition format 0.0.4):
//   # HELP name text
//   # TYPE name gauge|counter
//   name{label="value",...} number
// Names follow Prometheus' conventions: base units (seconds, bytes),
// counters end in _total, a state is one 0/1 gauge per possible value.
#include <cstdio>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "apps/kv/metrics.hpp"

namespace walrus::kv::server {

namespace {

using label = std::pair<std::string_view, std::string_view>;

// Appends families and their samples; a family's HELP and TYPE come first.
class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // plain text without backslashes or newlines
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::initializer_list<label> labels, uint64_t value) {
    begin_sample(labels);
    out_ += std::to_string(value);
    out_ += '\n';
  }

  void sample(std::initializer_list<label> labels, double value) {
    begin_sample(labels);
    char text[64];
    std::snprintf(text, sizeof(text), "%.3f", value);
    out_ += text;
    out_ += '\n';
  }

  std::string take() { return std::move(out_); }

 private:
  void begin_sample(std::initializer_list<label> labels) {
    out_ += name_;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (auto& [key, value] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += key;
        out_ += "=\"";
        escape(value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
  }

  // Label values escape backslash, double quote and newline.
  void escape(std::string_view value) {
    for (char c : value) {
      if (c == '\\')
        out_ += "\\\\";
      else if (c == '"')
        out_ += "\\\"";
      else if (c == '\n')
        out_ += "\\n";
      else
        out_ += c;
    }
  }

  std::string out_;
  std::string_view name_;
};

double seconds_of_us(uint64_t us) {
  return static_cast<double>(us) / 1e6;
}

double seconds_of_ms(uint64_t ms) {
  return static_cast<double>(ms) / 1e3;
}

void process_metrics(exposition& x, const metrics_snapshot& s) {
  x.family("walrus_node_info", "gauge", "The node's role and walrus version; always 1.");
  x.sample({{"role", s.primary ? "primary" : "replica"}, {"version", s.version}}, uint64_t{1});
  x.family("walrus_uptime_seconds", "gauge", "Seconds since the process started.");
  x.sample({}, s.uptime_seconds);
  x.family("walrus_connected_clients", "gauge", "RESP client connections open now.");
  if (s.connected_clients) x.sample({}, *s.connected_clients);
  x.family("walrus_commands_processed_total", "counter", "RESP commands processed.");
  if (s.commands_processed) x.sample({}, *s.commands_processed);
  x.family("walrus_wal_first_sequence", "gauge", "First sequence the WAL still retains.");
  x.sample({}, s.wal_first_sequence);
  x.family("walrus_wal_last_sequence", "gauge", "Last sequence appended to the WAL.");
  x.sample({}, s.wal_last_sequence);
  x.family("walrus_wal_durable_sequence", "gauge", "Last sequence of the WAL known durable.");
  x.sample({}, s.wal_durable_sequence);
  x.family("walrus_wal_size_bytes", "gauge", "Bytes of the WAL segments retained on disk.");
  x.sample({}, s.wal_size_bytes);
  x.family("walrus_replication_status_ok", "gauge",
           "1 when the replication actors answered this scrape, else 0.");
  x.sample({}, uint64_t{s.primary ? s.primary_view.has_value() : s.replica_view.has_value()});
  x.family("walrus_component_restarts_total", "counter",
           "Restarts of a supervised replication component.");
  for (auto& r : s.restarts) x.sample({{"component", r.component}}, r.restarts);
}

// One gauge per replica, from a field of replica_info.
template <class Field>
void per_replica(exposition& x, const primary_status& st, std::string_view name,
                 std::string_view type, std::string_view help, Field field) {
  x.family(name, type, help);
  for (auto& r : st.replicas) x.sample({{"replica", r.replica_id}}, field(r));
}

void primary_metrics(exposition& x, const metrics_snapshot& s) {
  static const primary_status none;
  const auto& st = s.primary_view ? *s.primary_view : none;
  uint64_t connected = 0;
  for (auto& r : st.replicas)
    if (r.link == "streaming" || r.link == "catching_up") ++connected;
  x.family("walrus_primary_replicas", "gauge", "Replicas the primary knows.");
  if (s.primary_view) x.sample({}, uint64_t{st.replicas.size()});
  x.family("walrus_primary_replicas_connected", "gauge", "Replicas streaming or catching up.");
  if (s.primary_view) x.sample({}, connected);
  using info = replica_info;
  per_replica(x, st, "walrus_primary_replica_received_sequence", "gauge",
              "Last sequence the replica received.",
              [](const info& r) { return r.received_sequence; });
  per_replica(x, st, "walrus_primary_replica_durable_sequence", "gauge",
              "Last sequence durable in the replica's WAL.",
              [](const info& r) { return r.durable_sequence; });
  per_replica(x, st, "walrus_primary_replica_applied_sequence", "gauge",
              "Last sequence the replica applied.",
              [](const info& r) { return r.applied_sequence; });
  per_replica(x, st, "walrus_primary_replica_lag_entries", "gauge",
              "The primary's durable sequence minus the replica's applied one.",
              [](const info& r) { return r.lag_entries; });
  per_replica(x, st, "walrus_primary_replica_lag_bytes", "gauge",
              "WAL bytes between the replica's applied position and the primary's end.",
              [](const info& r) { return r.lag_bytes; });
  per_replica(x, st, "walrus_primary_replica_lag_seconds", "gauge",
              "Age of the oldest entry the replica has not applied.",
              [](const info& r) { return seconds_of_ms(r.lag_ms); });
  per_replica(x, st, "walrus_primary_replica_in_flight_bytes", "gauge",
              "Entry bytes sent to the replica and not yet acknowledged.",
              [](const info& r) { return r.in_flight_bytes; });
  per_replica(x, st, "walrus_primary_replica_link_down_since_timestamp_seconds", "gauge",
              "Unix time the replica's link went down; 0 while it is up.",
              [](const info& r) { return seconds_of_us(r.link_down_since_us); });
  per_replica(x, st, "walrus_primary_replica_batches_sent_total", "counter",
              "Batches sealed for the replica, resends included.",
              [](const info& r) { return r.batches_sent; });
  per_replica(x, st, "walrus_primary_replica_batch_bytes_total", "counter",
              "Entry bytes of those batches before compression.",
              [](const info& r) { return r.batch_bytes; });
  per_replica(x, st, "walrus_primary_replica_batch_wire_bytes_total", "counter",
              "Entry bytes of those batches after compression.",
              [](const info& r) { return r.batch_wire_bytes; });
  x.family("walrus_primary_replica_link_state", "gauge",
           "1 for the replica's link state (streaming, catching_up, down, lost), else 0.");
  for (auto& r : st.replicas) {
    bool known = false;
    for (std::string_view state : {"streaming", "catching_up", "down", "lost"}) {
      known = known || r.link == state;
      x.sample({{"replica", r.replica_id}, {"state", state}}, uint64_t{r.link == state});
    }
    if (!known) x.sample({{"replica", r.replica_id}, {"state", r.link}}, uint64_t{1});
  }
}

void replica_metrics(exposition& x, const metrics_snapshot& s) {
  auto* st = s.replica_view ? &*s.replica_view : nullptr;
  auto gauge = [&](std::string_view name, std::string_view help, auto field) {
    x.family(name, "gauge", help);
    if (st != nullptr) x.sample({}, field(*st));
  };
  using status = replica_status;
  gauge("walrus_replica_received_sequence", "Last sequence received from the primary.",
        [](const status& r) { return r.received_sequence; });
  gauge("walrus_replica_durable_sequence", "Last sequence durable in this replica's WAL.",
        [](const status& r) { return r.durable_sequence; });
  gauge("walrus_replica_applied_sequence", "Last sequence applied to the store.",
        [](const status& r) { return r.applied_sequence; });
  gauge("walrus_replica_primary_sequence", "Newest sequence the primary announced.",
        [](const status& r) { return r.primary_sequence; });
  gauge("walrus_replica_lag_entries", "The primary's announced sequence minus the applied one.",
        [](const status& r) {
          return r.primary_sequence > r.applied_sequence ? r.primary_sequence - r.applied_sequence
                                                         : uint64_t{0};
        });
  gauge("walrus_replica_lag_seconds",
        "How long the replica has been behind the primary's announced sequence; 0 when level.",
        [](const status& r) { return seconds_of_ms(r.lag_ms); });
  gauge("walrus_replica_entries_remaining", "Entries known on the primary and not yet applied.",
        [](const status& r) { return r.entries_remaining; });
  gauge("walrus_replica_apply_rate_entries_per_second",
        "Entries applied per second, smoothed over about a second.",
        [](const status& r) { return r.apply_rate; });
  gauge("walrus_replica_link_down_since_timestamp_seconds",
        "Unix time the link to the primary went down; 0 while it is up.",
        [](const status& r) { return seconds_of_us(r.link_down_since_us); });
  x.family("walrus_replica_link_reconnects_total", "counter",
           "Times the link to the primary came up again after having been up.");
  if (st != nullptr) x.sample({}, st->link_reconnects);
  x.family("walrus_replica_state", "gauge", "1 for the replica's current state, else 0.");
  if (st == nullptr) return;
  for (auto state :
       {replica_state::connecting, replica_state::streaming, replica_state::applying,
        replica_state::syncing, replica_state::acknowledging, replica_state::waiting_for_data,
        replica_state::bootstrapping, replica_state::error}) {
    std::string name = to_string(state);
    for (auto& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    x.sample({{"state", name}}, uint64_t{st->state == state});
  }
}

}  // namespace

std::string render_metrics(const metrics_snapshot& snapshot) {
  exposition x;
  process_metrics(x, snapshot);
  if (snapshot.primary)
    primary_metrics(x, snapshot);
  else
    replica_metrics(x, snapshot);
  return x.take();
}

}  // namespace walrus::kv::server
