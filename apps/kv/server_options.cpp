// The walrus-kv command line and config file. Both go through one table of
// options and one apply_option(), so a key means the same in either place;
// the file is read first and the command line overrides it.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <utility>
#include <vector>

#include "apps/kv/server.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/config_option_set.hpp"
#include "caf/config_value.hpp"
#include "caf/pec.hpp"
#include "caf/settings.hpp"

namespace walrus::kv::server {

std::string usage() {
  return R"(walrus-kv: a Redis-protocol key-value server replicated by walrus

Usage:
  walrus-kv primary --dir DIR [--bind 127.0.0.1] [--port 6379] [--repl-port 7379]
                    [--codec zstd|snappy|none] [--sync always|group|none|interval:MS]
                    [--secret S] [--cluster NAME] [--max-clients N] [--metrics-port P]
                    [--config FILE]
  walrus-kv replica --dir DIR --primary HOST:PORT [--bind 127.0.0.1] [--port 6380]
                    [--replica-id NAME] [--sync ...] [--secret S] [--cluster NAME]
                    [--max-clients N] [--metrics-port P] [--config FILE]
  walrus-kv demo    [--dir DIR]
  walrus-kv --help

Options:
  --dir DIR        data folder (created when missing): DIR/wal holds the write-ahead log
  --bind ADDR      address for RESP clients and, on a primary, for replicas (127.0.0.1)
  --port P         RESP port (primary 6379, replica 6380); 0 picks a free port, printed
                   on the line "walrus-kv: ... listening on ADDR:PORT ..."
  --repl-port P    replication port of a primary (7379); 0 picks a free port
  --primary H:P    the primary's replication address (its --repl-port)
  --codec C        batch compression towards replicas: zstd (zstd:LEVEL), snappy, none (zstd)
  --sync S         when a write is durable before its reply (group):
                     always       one fdatasync per write command, before anyone sees it
                     group        writes arriving together share one fdatasync
                     interval:MS  fdatasync every MS milliseconds; replies do not wait
                     none         never fdatasync; replies do not wait
  --secret S       shared secret: replicas and primary authenticate each other (HMAC)
  --cluster NAME   cluster name; primary and replicas must agree (walrus-kv)
  --replica-id ID  this replica's name at the primary (default: DIR/replica-id, generated once)
  --max-clients N  RESP connections accepted at once (10000)
  --max-request-bytes N  largest request accepted; larger ones get an error and a close (64 MiB)
  --snapshot-entries N   write a snapshot (DIR/snapshots) every N applied entries; 0: only on
                   BGSAVE (1000000). The WAL before the newest snapshot may then be dropped
                   (once every connected replica has it); a replica that comes back later
                   bootstraps from the snapshot over the replication connection
  --wal-segment-bytes N  WAL segment size: retention drops whole segments (67108864)
  --metrics-port P Prometheus metrics at http://ADDR:P/metrics (off); 0 picks a free port,
                   printed on the line "walrus-kv: metrics on ADDR:PORT ..."
  --config FILE    read options from FILE (CAF's INI format); the command line wins:
                     [walrus-kv]          the options above without "--": dir = "/d", port = 6380
                     [scheduler] etc.     CAF settings: max-threads = 4 (default: cores), policy = 'sharing'
                   strings need double quotes; an unknown key or a bad value is an error

SIGTERM or SIGINT stops accepting clients, answers what was received, syncs the WAL and
exits 0; a second signal exits at once.

demo: starts a primary and two replicas (child processes on free loopback ports, data and
logs under DIR, default ./demo-data), writes thousands of keys with a RESP client, kills
and restarts a replica, shows positions and lag, stops everything and exits 0.
)";
}

namespace {

status bad(std::string message) {
  return status{errc::invalid_argument, std::move(message)};
}

bool parse_unsigned(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > max) return false;
  }
  out = value;
  return true;
}

result<uint16_t> parse_port(std::string_view option, std::string_view text) {
  uint64_t value = 0;
  if (!parse_unsigned(text, 65535, value))
    return bad("invalid " + std::string{option} + " '" + std::string{text} +
               "': expected a port number 0..65535");
  return static_cast<uint16_t>(value);
}

// Which commands take an option (the same name in the file, without "--").
enum mode_bits : uint8_t { on_primary = 1, on_replica = 2, on_demo = 4 };

struct option_def {
  std::string_view name;
  uint8_t modes;
};

constexpr option_def option_table[] = {
    {"dir", on_primary | on_replica | on_demo},
    {"bind", on_primary | on_replica},
    {"port", on_primary | on_replica},
    {"secret", on_primary | on_replica},
    {"sync", on_primary | on_replica},
    {"cluster", on_primary | on_replica},
    {"max-clients", on_primary | on_replica},
    {"max-request-bytes", on_primary | on_replica},
    {"snapshot-entries", on_primary | on_replica},
    {"wal-segment-bytes", on_primary | on_replica},
    {"metrics-port", on_primary | on_replica},
    {"config", on_primary | on_replica},
    {"repl-port", on_primary},
    {"codec", on_primary},
    {"primary", on_replica},
    {"replica-id", on_replica},
};

uint8_t bit_of(run_mode mode) {
  switch (mode) {
    case run_mode::primary: return on_primary;
    case run_mode::replica: return on_replica;
    case run_mode::demo: return on_demo;
    case run_mode::help: return 0;
  }
  return 0;
}

const option_def* find_option(std::string_view name) {
  for (auto& def : option_table)
    if (def.name == name) return &def;
  return nullptr;
}

const char* command_name(run_mode mode) {
  return mode == run_mode::primary ? "primary" : mode == run_mode::replica ? "replica" : "demo";
}

// What parse_options() must see at least once, from either source.
struct seen {
  bool dir = false;
  bool primary = false;
};

// Applies one option; `shown` is how errors name it ("--port" on the
// command line, "port" in the file).
status apply_option(options& opts, seen& got, std::string_view name, const std::string& value,
                    const std::string& shown) {
  if (name == "dir") {
    if (value.empty()) return bad(shown + " needs a non-empty path");
    opts.dir = value;
    got.dir = true;
  } else if (name == "bind") {
    if (value.empty()) return bad(shown + " needs an address");
    opts.bind = value;
  } else if (name == "port" || name == "repl-port" || name == "metrics-port") {
    auto p = parse_port(shown, value);
    if (!p) return p.error();
    if (name == "port") opts.port = *p;
    if (name == "repl-port") opts.repl_port = *p;
    if (name == "metrics-port") opts.metrics_port = *p;
  } else if (name == "codec") {
    auto c = codec::parse_codec_config(value);
    if (!c) return bad("invalid " + shown + " '" + value + "': " + c.error().message());
    opts.codec = *c;
  } else if (name == "sync") {
    auto s = wal::sync_policy::parse(value);
    if (!s)
      return bad("invalid " + shown + " '" + value +
                 "': expected always, group, none or interval:MS");
    opts.sync = *s;
  } else if (name == "secret") {
    if (value.empty()) return bad(shown + " must not be empty");
    opts.secret = value;
  } else if (name == "cluster") {
    if (value.empty()) return bad(shown + " must not be empty");
    opts.cluster_id = value;
  } else if (name == "replica-id") {
    if (value.empty() || value.size() > 64) return bad(shown + " must be 1..64 characters");
    for (char c : value)
      if (c <= ' ' || c == ',' || c == ':' || c > '~')
        return bad(shown + " may not contain spaces, ',' or ':'");
    opts.replica_id = value;
  } else if (name == "primary") {
    auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return bad("invalid " + shown + " '" + value + "': expected HOST:PORT");
    auto p = parse_port(shown, value.substr(colon + 1));
    if (!p) return p.error();
    if (*p == 0) return bad("invalid " + shown + " '" + value + "': port 0");
    opts.primary_host = value.substr(0, colon);
    opts.primary_port = *p;
    got.primary = true;
  } else if (name == "max-clients") {
    uint64_t n = 0;
    if (!parse_unsigned(value, 1'000'000, n) || n == 0)
      return bad("invalid " + shown + " '" + value + "': expected 1..1000000");
    opts.max_clients = n;
  } else if (name == "max-request-bytes") {
    uint64_t n = 0;
    if (!parse_unsigned(value, uint64_t{1} << 30, n) || n < 1024)
      return bad("invalid " + shown + " '" + value + "': expected 1024..1073741824");
    opts.max_request_bytes = n;
  } else if (name == "snapshot-entries") {
    uint64_t n = 0;
    if (!parse_unsigned(value, uint64_t{1} << 40, n))
      return bad("invalid " + shown + " '" + value + "': expected 0 (only BGSAVE) .. 2^40");
    opts.snapshot_entries = n;
  } else if (name == "wal-segment-bytes") {
    uint64_t n = 0;
    if (!parse_unsigned(value, uint64_t{1} << 40, n) || n < 4096)
      return bad("invalid " + shown + " '" + value + "': expected 4096 .. 2^40");
    opts.wal_segment_bytes = n;
  } else if (name == "config") {
    if (value.empty()) return bad(shown + " needs a file name");
    opts.config_file = value;
  }
  return ok_status();
}

// -- the config file --------------------------------------------------------------

constexpr std::string_view own_section = "walrus-kv";
// CAF's own sections that may configure the actor system.
constexpr std::string_view caf_sections[] = {"scheduler", "work-stealing", "middleman", "stream",
                                             "logger"};

// Gives access to CAF's table of its own options, for checking keys and values.
struct caf_option_table : caf::actor_system_config {
  const caf::config_option_set& table() const { return custom_options_; }
};

std::string render_parse_error(const std::string& file, const caf::error& err) {
  if (err.category() == caf::atom("parser")) {
    auto what = caf::to_string(static_cast<caf::pec>(err.code()));
    std::string where = file;
    auto& context = err.context();
    if (context.match_elements<caf::settings>()) {
      auto& at = context.get_as<caf::settings>(0);
      auto line = caf::get_if<int64_t>(&at, "line");
      auto column = caf::get_if<int64_t>(&at, "column");
      if (line && column) where += ":" + std::to_string(*line) + ":" + std::to_string(*column);
    }
    return where + ": syntax error (" + what +
           "); text values need double quotes, e.g. dir = \"/var/lib/walrus\"";
  }
  return file + ": " + caf::actor_system_config::render(err);
}

// Reads and parses `file`: its sections, checked for syntax only.
result<caf::settings> read_config_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return bad("cannot read config file " + file + ": " + std::strerror(errno));
  auto parsed = caf::actor_system_config::parse_config(in);
  if (!parsed) return bad(render_parse_error(file, parsed.error()));
  if (in.bad()) return bad("cannot read config file " + file + ": read error");
  for (auto& [key, value] : *parsed)
    if (!caf::holds_alternative<caf::settings>(value))
      return bad(file + ": key '" + key + "' outside a section (put it under [walrus-kv])");
  return std::move(*parsed);
}

// The walrus-kv section as (key, value text) pairs; numbers become text.
result<std::vector<std::pair<std::string, std::string>>> own_options(
    const std::string& file, const caf::settings& sections) {
  std::vector<std::pair<std::string, std::string>> out;
  auto i = sections.find(own_section);
  if (i == sections.end()) return out;
  for (auto& [key, value] : caf::get<caf::settings>(i->second)) {
    auto shown = file + ": [walrus-kv] " + key;
    if (auto text = caf::get_if<std::string>(&value)) {
      out.emplace_back(key, *text);
    } else if (auto number = caf::get_if<int64_t>(&value)) {
      out.emplace_back(key, std::to_string(*number));
    } else {
      return bad(shown + ": expected a number or a \"text\", got " + caf::to_string(value));
    }
  }
  return out;
}

// Checks every CAF section of the file; with `cfg`, also applies them.
status check_caf_sections(const std::string& file, const caf::settings& sections,
                          caf::actor_system_config* cfg) {
  caf_option_table table;
  for (auto& [section, content] : sections) {
    if (section == own_section) continue;
    bool known = false;
    for (auto name : caf_sections) known = known || section == name;
    if (!known)
      return bad(file + ": unknown section [" + section +
                 "] (expected [walrus-kv], [scheduler], [work-stealing], [middleman], [stream] or "
                 "[logger])");
    for (auto& [key, value] : caf::get<caf::settings>(content)) {
      auto full = section + "." + key;
      auto option = table.table().qualified_name_lookup(section, key);
      if (option == nullptr) return bad(file + ": unknown key '" + full + "'");
      if (auto err = option->check(value)) {
        auto type = option->type_name();
        std::string expected{type.data(), type.size()};
        if (expected == "atom") expected += " (in single quotes)";
        return bad(file + ": invalid " + full + " = " + caf::to_string(value) + ": expected " +
                   expected);
      }
      if (cfg != nullptr) cfg->set(full, value);
    }
  }
  return ok_status();
}

// Applies the file's [walrus-kv] keys, then checks its CAF sections.
status apply_config_file(options& opts, seen& got, const std::string& file) {
  auto sections = read_config_file(file);
  if (!sections) return sections.error();
  auto own = own_options(file, *sections);
  if (!own) return own.error();
  for (auto& [key, value] : *own) {
    auto shown = file + ": [walrus-kv] " + key;
    auto def = find_option(key);
    if (def == nullptr || key == "config")
      return bad(file + ": unknown key 'walrus-kv." + key + "'");
    if ((def->modes & bit_of(opts.mode)) == 0)
      return bad(shown + " does not apply to 'walrus-kv " + command_name(opts.mode) + "'");
    if (auto st = apply_option(opts, got, key, value, key); !st.ok())
      return bad(file + ": [walrus-kv] " + st.message());
  }
  return check_caf_sections(file, *sections, nullptr);
}

}  // namespace

result<options> parse_options(int argc, char** argv) {
  options opts;
  if (argc < 2) return bad("missing command: primary, replica or demo (see walrus-kv --help)");
  std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    opts.mode = run_mode::help;
    return opts;
  }
  if (command == "primary") {
    opts.mode = run_mode::primary;
  } else if (command == "replica") {
    opts.mode = run_mode::replica;
    opts.port = 6380;
  } else if (command == "demo") {
    opts.mode = run_mode::demo;
    opts.dir = "demo-data";
  } else {
    return bad("unknown command '" + std::string{command} +
               "': expected primary, replica or demo (see walrus-kv --help)");
  }
  // Every option takes a value: split the command line into (name, value)
  // first, so --config is found wherever it stands.
  std::vector<std::pair<std::string, std::string>> given;
  std::string config_file;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      opts.mode = run_mode::help;
      return opts;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--")
      return bad("unexpected argument '" + std::string{arg} + "' (see walrus-kv --help)");
    std::string name{arg};
    std::string value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      inline_value = true;
    }
    auto def = find_option(std::string_view{name}.substr(2));
    if (def == nullptr) return bad("unknown option '" + name + "' (see walrus-kv --help)");
    if ((def->modes & bit_of(opts.mode)) == 0)
      return bad("option " + name + " does not apply to 'walrus-kv " + std::string{command} + "'");
    if (!inline_value) {
      if (i + 1 >= argc) return bad("option " + name + " needs a value");
      value = argv[++i];
    }
    if (def->name == "config") {
      if (!config_file.empty()) return bad("option --config given twice");
      if (value.empty()) return bad("--config needs a file name");
      config_file = value;
    }
    given.emplace_back(name.substr(2), std::move(value));
  }
  seen got;
  if (!config_file.empty())
    if (auto st = apply_config_file(opts, got, config_file); !st.ok()) return st;
  for (auto& [name, value] : given)
    if (auto st = apply_option(opts, got, name, value, "--" + name); !st.ok()) return st;
  if (opts.mode != run_mode::demo && !got.dir)
    return bad("missing --dir DIR (the data folder; see walrus-kv --help)");
  if (opts.mode == run_mode::replica && !got.primary)
    return bad("missing --primary HOST:PORT (the primary's --repl-port)");
  return opts;
}

status configure_actor_system(caf::actor_system_config& cfg, const options& opts) {
  if (opts.config_file.empty()) return ok_status();
  auto sections = read_config_file(opts.config_file);
  if (!sections) return sections.error();
  return check_caf_sections(opts.config_file, *sections, &cfg);
}

}  // namespace walrus::kv::server
