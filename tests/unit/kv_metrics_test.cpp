#define CAF_SUITE kv_metrics
#include "caf/test/unit_test.hpp"

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "apps/kv/metrics.hpp"

using namespace walrus;
using namespace walrus::kv::server;

namespace {

bool metric_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == ':'))
      return false;
  return true;
}

// Checks `text` against the exposition format 0.0.4 as Prometheus reads it:
// HELP then TYPE before a family's samples, every sample in the family last
// announced, a family announced once, values that parse as numbers. Returns
// the samples as "name{labels}" -> value text; reports violations.
std::map<std::string, std::string> parse_exposition(const std::string& text,
                                                    std::vector<std::string>& errors) {
  std::map<std::string, std::string> samples;
  std::set<std::string> families;
  std::string help_of, family;
  std::istringstream in(text);
  std::string line;
  if (text.empty() || text.back() != '\n') errors.push_back("does not end with a newline");
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      help_of = rest.substr(0, rest.find(' '));
      if (!metric_name(help_of) || rest.size() <= help_of.size() + 1)
        errors.push_back("bad HELP: " + line);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      if (name != help_of) errors.push_back("TYPE without HELP: " + line);
      if (type != "gauge" && type != "counter") errors.push_back("bad type: " + line);
      if (type == "counter" && name.size() < 6) errors.push_back("short counter: " + line);
      if (type == "counter" && name.compare(name.size() - 6, 6, "_total") != 0)
        errors.push_back("counter without _total: " + line);
      if (!families.insert(name).second) errors.push_back("family twice: " + name);
      family = name;
      continue;
    }
    auto space = line.rfind(' ');
    if (space == std::string::npos) {
      errors.push_back("not a sample: " + line);
      continue;
    }
    auto series = line.substr(0, space);
    auto value = line.substr(space + 1);
    auto name = series.substr(0, series.find('{'));
    if (name != family) errors.push_back("sample outside its family: " + line);
    if (series.find('{') != std::string::npos && series.back() != '}')
      errors.push_back("bad labels: " + line);
    char* end = nullptr;
    std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') errors.push_back("bad value: " + line);
    if (!samples.emplace(series, value).second) errors.push_back("sample twice: " + line);
  }
  return samples;
}

metrics_snapshot primary_snapshot() {
  metrics_snapshot s;
  s.primary = true;
  s.version = "0.1.0";
  s.uptime_seconds = 12.25;
  s.connected_clients = 3;
  s.commands_processed = 1000;
  s.wal_first_sequence = 1;
  s.wal_last_sequence = 500;
  s.wal_durable_sequence = 499;
  s.wal_size_bytes = 65536;
  primary_status st;
  st.first_retained = 1;
  st.last_sequence = 500;
  st.durable_sequence = 499;
  replica_info up;
  up.replica_id = "r1";
  up.link = "streaming";
  up.received_sequence = 450;
  up.durable_sequence = 440;
  up.applied_sequence = 430;
  up.lag_entries = 69;
  up.lag_bytes = 7000;
  up.lag_ms = 1500;
  up.in_flight_bytes = 2048;
  up.batches_sent = 17;
  up.batch_bytes = 90000;
  up.batch_wire_bytes = 30000;
  replica_info down;
  down.replica_id = "odd\"id\\x";
  down.link = "down";
  down.link_down_since_us = 1'700'000'000'250'000;
  st.replicas = {up, down};
  s.primary_view = st;
  s.restarts = {{"tailer@r1", 2}, {"batcher@r1", 0}};
  return s;
}

}  // namespace

CAF_TEST(the text of a primary is valid exposition format with every replica metric) {
  auto text = render_metrics(primary_snapshot());
  std::vector<std::string> errors;
  auto samples = parse_exposition(text, errors);
  for (auto& e : errors) CAF_MESSAGE(e);
  CAF_CHECK(errors.empty());
  auto at = [&](const std::string& series) {
    auto i = samples.find(series);
    return i == samples.end() ? std::string{"(none)"} : i->second;
  };
  CAF_CHECK_EQUAL(at("walrus_node_info{role=\"primary\",version=\"0.1.0\"}"), "1");
  CAF_CHECK_EQUAL(at("walrus_uptime_seconds"), "12.250");
  CAF_CHECK_EQUAL(at("walrus_connected_clients"), "3");
  CAF_CHECK_EQUAL(at("walrus_commands_processed_total"), "1000");
  CAF_CHECK_EQUAL(at("walrus_wal_first_sequence"), "1");
  CAF_CHECK_EQUAL(at("walrus_wal_last_sequence"), "500");
  CAF_CHECK_EQUAL(at("walrus_wal_durable_sequence"), "499");
  CAF_CHECK_EQUAL(at("walrus_wal_size_bytes"), "65536");
  CAF_CHECK_EQUAL(at("walrus_replication_status_ok"), "1");
  CAF_CHECK_EQUAL(at("walrus_primary_replicas"), "2");
  CAF_CHECK_EQUAL(at("walrus_primary_replicas_connected"), "1");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_received_sequence{replica=\"r1\"}"), "450");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_durable_sequence{replica=\"r1\"}"), "440");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_applied_sequence{replica=\"r1\"}"), "430");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_lag_entries{replica=\"r1\"}"), "69");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_lag_bytes{replica=\"r1\"}"), "7000");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_lag_seconds{replica=\"r1\"}"), "1.500");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_in_flight_bytes{replica=\"r1\"}"), "2048");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_batches_sent_total{replica=\"r1\"}"), "17");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_batch_bytes_total{replica=\"r1\"}"), "90000");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_batch_wire_bytes_total{replica=\"r1\"}"), "30000");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_link_state{replica=\"r1\",state=\"streaming\"}"), "1");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_link_state{replica=\"r1\",state=\"down\"}"), "0");
  CAF_CHECK_EQUAL(at("walrus_component_restarts_total{component=\"tailer@r1\"}"), "2");
  CAF_CHECK_EQUAL(at("walrus_component_restarts_total{component=\"batcher@r1\"}"), "0");
  // Label values escape quotes and backslashes.
  auto odd = std::string{"{replica=\"odd\\\"id\\\\x\"}"};
  CAF_CHECK_EQUAL(at("walrus_primary_replica_link_down_since_timestamp_seconds" + odd),
                  "1700000000.250");
  CAF_CHECK_EQUAL(
      at("walrus_primary_replica_link_state{replica=\"odd\\\"id\\\\x\",state=\"down\"}"), "1");
  CAF_CHECK_EQUAL(at("walrus_primary_replica_link_down_since_timestamp_seconds{replica=\"r1\"}"),
                  "0.000");
}

CAF_TEST(a replica reports its own progress and exactly one state) {
  metrics_snapshot s;
  s.primary = false;
  s.version = "0.1.0";
  replica_status st;
  st.replica_id = "r1";
  st.state = replica_state::streaming;
  st.received_sequence = 90;
  st.durable_sequence = 85;
  st.applied_sequence = 80;
  st.primary_sequence = 100;
  st.entries_remaining = 20;
  st.apply_rate = 5000;
  st.lag_ms = 250;
  st.link_reconnects = 3;
  s.replica_view = st;
  s.restarts = {{"applier", 1}, {"transport", 4}};
  auto text = render_metrics(s);
  std::vector<std::string> errors;
  auto samples = parse_exposition(text, errors);
  for (auto& e : errors) CAF_MESSAGE(e);
  CAF_CHECK(errors.empty());
  CAF_CHECK_EQUAL(samples["walrus_node_info{role=\"replica\",version=\"0.1.0\"}"], "1");
  CAF_CHECK_EQUAL(samples["walrus_replica_received_sequence"], "90");
  CAF_CHECK_EQUAL(samples["walrus_replica_durable_sequence"], "85");
  CAF_CHECK_EQUAL(samples["walrus_replica_applied_sequence"], "80");
  CAF_CHECK_EQUAL(samples["walrus_replica_primary_sequence"], "100");
  CAF_CHECK_EQUAL(samples["walrus_replica_lag_entries"], "20");
  CAF_CHECK_EQUAL(samples["walrus_replica_lag_seconds"], "0.250");
  CAF_CHECK_EQUAL(samples["walrus_replica_entries_remaining"], "20");
  CAF_CHECK_EQUAL(samples["walrus_replica_apply_rate_entries_per_second"], "5000");
  CAF_CHECK_EQUAL(samples["walrus_replica_link_reconnects_total"], "3");
  CAF_CHECK_EQUAL(samples["walrus_component_restarts_total{component=\"transport\"}"], "4");
  size_t states = 0, on = 0;
  for (auto& [series, value] : samples)
    if (series.rfind("walrus_replica_state{", 0) == 0) {
      ++states;
      if (value == "1") {
        ++on;
        CAF_CHECK_EQUAL(series, "walrus_replica_state{state=\"streaming\"}");
      }
    }
  CAF_CHECK_EQUAL(states, 8u);
  CAF_CHECK_EQUAL(on, 1u);
  CAF_CHECK(samples.count("walrus_primary_replicas") == 0);
}

CAF_TEST(a source that did not answer leaves its metrics announced without samples) {
  metrics_snapshot s = primary_snapshot();
  s.connected_clients.reset();
  s.commands_processed.reset();
  s.primary_view.reset();
  s.restarts.clear();
  auto text = render_metrics(s);
  std::vector<std::string> errors;
  auto samples = parse_exposition(text, errors);
  CAF_CHECK(errors.empty());
  CAF_CHECK_EQUAL(samples["walrus_replication_status_ok"], "0");
  CAF_CHECK(samples.count("walrus_connected_clients") == 0);
  CAF_CHECK(samples.count("walrus_primary_replicas") == 0);
  CAF_CHECK(text.find("# TYPE walrus_connected_clients gauge\n") != std::string::npos);
  CAF_CHECK(text.find("# TYPE walrus_primary_replica_lag_entries gauge\n") != std::string::npos);
  CAF_CHECK_EQUAL(samples["walrus_wal_last_sequence"], "500");
}
