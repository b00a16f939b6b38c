// The walrus-kv command line.
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "apps/kv/server.hpp"

namespace walrus::kv::server {

std::string usage() {
  return R"(walrus-kv: a Redis-protocol key-value server replicated by walrus

Usage:
  walrus-kv primary --dir DIR [--bind 127.0.0.1] [--port 6379] [--repl-port 7379]
                    [--codec zstd|snappy|none] [--sync always|group|none|interval:MS]
                    [--secret S] [--cluster NAME] [--max-clients N]
  walrus-kv replica --dir DIR --primary HOST:PORT [--bind 127.0.0.1] [--port 6380]
                    [--replica-id NAME] [--sync ...] [--secret S] [--cluster NAME]
                    [--max-clients N]
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
  bool have_dir = false;
  bool have_primary = false;
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
    auto allowed = [&](std::initializer_list<run_mode> modes) {
      for (auto m : modes)
        if (m == opts.mode) return true;
      return false;
    };
    using m = run_mode;
    bool known = true;
    bool ok_here = true;
    if (name == "--dir") {
      ok_here = true;
    } else if (name == "--bind" || name == "--port" || name == "--secret" || name == "--sync" ||
               name == "--cluster" || name == "--max-clients" || name == "--max-request-bytes") {
      ok_here = allowed({m::primary, m::replica});
    } else if (name == "--repl-port" || name == "--codec") {
      ok_here = allowed({m::primary});
    } else if (name == "--primary" || name == "--replica-id") {
      ok_here = allowed({m::replica});
    } else {
      known = false;
    }
    if (!known) return bad("unknown option '" + name + "' (see walrus-kv --help)");
    if (!ok_here)
      return bad("option " + name + " does not apply to 'walrus-kv " + std::string{command} + "'");
    if (!inline_value) {
      if (i + 1 >= argc) return bad("option " + name + " needs a value");
      value = argv[++i];
    }
    if (name == "--dir") {
      if (value.empty()) return bad("--dir needs a non-empty path");
      opts.dir = value;
      have_dir = true;
    } else if (name == "--bind") {
      if (value.empty()) return bad("--bind needs an address");
      opts.bind = value;
    } else if (name == "--port") {
      auto p = parse_port(name, value);
      if (!p) return p.error();
      opts.port = *p;
    } else if (name == "--repl-port") {
      auto p = parse_port(name, value);
      if (!p) return p.error();
      opts.repl_port = *p;
    } else if (name == "--codec") {
      auto c = codec::parse_codec_config(value);
      if (!c) return bad("invalid --codec '" + value + "': " + c.error().message());
      opts.codec = *c;
    } else if (name == "--sync") {
      auto s = wal::sync_policy::parse(value);
      if (!s)
        return bad("invalid --sync '" + value + "': expected always, group, none or interval:MS");
      opts.sync = *s;
    } else if (name == "--secret") {
      if (value.empty()) return bad("--secret must not be empty");
      opts.secret = value;
    } else if (name == "--cluster") {
      if (value.empty()) return bad("--cluster must not be empty");
      opts.cluster_id = value;
    } else if (name == "--replica-id") {
      if (value.empty() || value.size() > 64) return bad("--replica-id must be 1..64 characters");
      for (char c : value)
        if (c <= ' ' || c == ',' || c == ':' || c > '~')
          return bad("--replica-id may not contain spaces, ',' or ':'");
      opts.replica_id = value;
    } else if (name == "--primary") {
      auto colon = value.rfind(':');
      if (colon == std::string::npos || colon == 0)
        return bad("invalid --primary '" + value + "': expected HOST:PORT");
      auto p = parse_port(name, value.substr(colon + 1));
      if (!p) return p.error();
      if (*p == 0) return bad("invalid --primary '" + value + "': port 0");
      opts.primary_host = value.substr(0, colon);
      opts.primary_port = *p;
      have_primary = true;
    } else if (name == "--max-clients") {
      uint64_t n = 0;
      if (!parse_unsigned(value, 1'000'000, n) || n == 0)
        return bad("invalid --max-clients '" + value + "': expected 1..1000000");
      opts.max_clients = n;
    } else if (name == "--max-request-bytes") {
      uint64_t n = 0;
      if (!parse_unsigned(value, uint64_t{1} << 30, n) || n < 1024)
        return bad("invalid --max-request-bytes '" + value + "': expected 1024..1073741824");
      opts.max_request_bytes = n;
    }
  }
  if (opts.mode != run_mode::demo && !have_dir)
    return bad("missing --dir DIR (the data folder; see walrus-kv --help)");
  if (opts.mode == run_mode::replica && !have_primary)
    return bad("missing --primary HOST:PORT (the primary's --repl-port)");
  return opts;
}

}  // namespace walrus::kv::server
