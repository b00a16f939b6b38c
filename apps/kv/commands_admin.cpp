// COMMAND, CONFIG, CLIENT and HELLO: answered well enough that redis-cli and
// redis-benchmark (and client libraries probing at connect) run unchanged.
// DEBUG DIGEST: the store's content digest, for tests comparing nodes.
#include <array>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "apps/kv/commands_internal.hpp"
#include "apps/kv/resp.hpp"

namespace walrus::kv::detail {

namespace {

constexpr std::string_view server_version = "0.1.0";

// What CONFIG GET reports: a server without persistence à la RDB/AOF.
constexpr std::array<std::pair<std::string_view, std::string_view>, 9> config_values = {{
    {"save", ""},
    {"appendonly", "no"},
    {"databases", "1"},
    {"maxmemory", "0"},
    {"maxmemory-policy", "noeviction"},
    {"maxclients", "10000"},
    {"timeout", "0"},
    {"tcp-keepalive", "300"},
    {"replica-read-only", "yes"},
}};

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Glob with '*' and '?', case-insensitive: CONFIG GET's patterns.
bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p, ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void append_command_info(std::string& reply, const command_spec& spec) {
  resp::append_array_header(reply, 10);
  resp::append_bulk(reply, spec.name);
  resp::append_integer(reply, spec.arity);
  std::vector<std::string_view> flags;
  if (spec.flags & flag_write) flags.insert(flags.end(), {"write", "denyoom"});
  if (spec.flags & flag_readonly) flags.push_back("readonly");
  if (spec.flags & flag_admin) flags.push_back("admin");
  if (spec.flags & flag_fast) flags.push_back("fast");
  resp::append_array_header(reply, flags.size());
  for (auto flag : flags) resp::append_simple(reply, flag);
  resp::append_integer(reply, spec.first_key);
  resp::append_integer(reply, spec.last_key);
  resp::append_integer(reply, spec.key_step);
  for (int i = 0; i < 4; ++i) resp::append_array_header(reply, 0);  // acl, tips, keys, subs
}

bool valid_client_name(std::string_view name) noexcept {
  for (char c : name)
    if (c < '!' || c > '~') return false;
  return true;
}

void append_client_line(std::string& reply, const command_context& ctx) {
  std::string line = "id=" + std::to_string(ctx.client ? ctx.client->id : 0) +
                     " name=" + (ctx.client ? ctx.client->name : std::string{}) + " db=0\n";
  resp::append_bulk(reply, line);
}

}  // namespace

WALRUS_KV_HANDLER(cmd_command) {
  (void)ctx, (void)ops;
  auto& table = all_commands();
  if (args.size() == 1) {
    resp::append_array_header(reply, table.size());
    for (auto& spec : table) append_command_info(reply, spec);
  } else if (equals_nocase(args[1], "count") && args.size() == 2) {
    resp::append_integer(reply, static_cast<int64_t>(table.size()));
  } else if (equals_nocase(args[1], "docs")) {
    resp::append_array_header(reply, 0);  // clients fall back to their own help
  } else if (equals_nocase(args[1], "list") && args.size() == 2) {
    resp::append_array_header(reply, table.size());
    for (auto& spec : table) resp::append_bulk(reply, spec.name);
  } else if (equals_nocase(args[1], "info")) {
    resp::append_array_header(reply, args.size() == 2 ? table.size() : args.size() - 2);
    if (args.size() == 2)
      for (auto& spec : table) append_command_info(reply, spec);
    for (size_t i = 2; i < args.size(); ++i) {
      if (auto* spec = find_command(args[i]))
        append_command_info(reply, *spec);
      else
        resp::append_null(reply);
    }
  } else {
    append_unknown_subcommand(reply, args[1], "COMMAND");
  }
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_config) {
  (void)ctx, (void)ops;
  if (equals_nocase(args[1], "get")) {
    if (args.size() < 3) {
      append_wrong_arity(reply, "config|get");
      return disposition::reply;
    }
    std::vector<std::pair<std::string_view, std::string_view>> found;
    for (auto& entry : config_values)
      for (size_t i = 2; i < args.size(); ++i)
        if (glob_match(args[i], entry.first)) {
          found.push_back(entry);
          break;
        }
    resp::append_array_header(reply, found.size() * 2);
    for (auto& [name, value] : found) {
      resp::append_bulk(reply, name);
      resp::append_bulk(reply, value);
    }
  } else if (equals_nocase(args[1], "resetstat") && args.size() == 2) {
    resp::append_simple(reply, "OK");
  } else if (equals_nocase(args[1], "set")) {
    resp::append_error(reply, "ERR CONFIG SET is not supported by walrus-kv");
  } else {
    append_unknown_subcommand(reply, args[1], "CONFIG");
  }
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_client) {
  (void)ops;
  auto sub = args[1];
  auto arity = [&](size_t n, std::string_view name) {
    if (args.size() == n) return true;
    append_wrong_arity(reply, name);
    return false;
  };
  if (equals_nocase(sub, "setname")) {
    if (!arity(3, "client|setname")) return disposition::reply;
    if (!valid_client_name(args[2])) {
      resp::append_error(reply,
                         "ERR Client names cannot contain spaces, newlines or special characters.");
      return disposition::reply;
    }
    if (ctx.client != nullptr) ctx.client->name.assign(args[2].data(), args[2].size());
    resp::append_simple(reply, "OK");
  } else if (equals_nocase(sub, "getname")) {
    if (!arity(2, "client|getname")) return disposition::reply;
    if (ctx.client == nullptr || ctx.client->name.empty())
      resp::append_null(reply);
    else
      resp::append_bulk(reply, ctx.client->name);
  } else if (equals_nocase(sub, "id")) {
    if (!arity(2, "client|id")) return disposition::reply;
    resp::append_integer(reply, static_cast<int64_t>(ctx.client ? ctx.client->id : 0));
  } else if (equals_nocase(sub, "info") || equals_nocase(sub, "list")) {
    append_client_line(reply, ctx);
  } else if (equals_nocase(sub, "setinfo")) {
    if (!arity(4, "client|setinfo")) return disposition::reply;
    resp::append_simple(reply, "OK");
  } else if (equals_nocase(sub, "no-evict") || equals_nocase(sub, "no-touch")) {
    if (!arity(3, "client|no-evict")) return disposition::reply;
    resp::append_simple(reply, "OK");
  } else if (equals_nocase(sub, "reply") && args.size() == 3 && equals_nocase(args[2], "on")) {
    resp::append_simple(reply, "OK");
  } else {
    append_unknown_subcommand(reply, sub, "CLIENT");
  }
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_hello) {
  (void)ops;
  size_t i = 1;
  if (args.size() > 1) {
    int64_t version = 0;
    if (!parse_int64(args[1], version)) {
      resp::append_error(reply, "ERR Protocol version is not an integer or out of range");
      return disposition::reply;
    }
    if (version != 2) {
      resp::append_error(reply, "NOPROTO unsupported protocol version");
      return disposition::reply;
    }
    i = 2;
  }
  for (; i < args.size(); i += 2) {
    if (!equals_nocase(args[i], "setname") || i + 1 == args.size() ||
        !valid_client_name(args[i + 1])) {
      resp::append_error(reply, syntax_error);
      return disposition::reply;
    }
    if (ctx.client != nullptr) ctx.client->name.assign(args[i + 1].data(), args[i + 1].size());
  }
  resp::append_array_header(reply, 14);
  resp::append_bulk(reply, "server");
  resp::append_bulk(reply, "walrus-kv");
  resp::append_bulk(reply, "version");
  resp::append_bulk(reply, server_version);
  resp::append_bulk(reply, "proto");
  resp::append_integer(reply, 2);
  resp::append_bulk(reply, "id");
  resp::append_integer(reply, static_cast<int64_t>(ctx.client ? ctx.client->id : 0));
  resp::append_bulk(reply, "mode");
  resp::append_bulk(reply, "standalone");
  resp::append_bulk(reply, "role");
  resp::append_bulk(reply, ctx.role == node_role::primary ? "master" : "replica");
  resp::append_bulk(reply, "modules");
  resp::append_array_header(reply, 0);
  return disposition::reply;
}

// DEBUG DIGEST: 32 hex digits, the record count then the sum of the record
// hashes of store::digest(); all zeros for an empty store, as Redis. It
// depends only on the content (not on the sequence or the role), so equal
// answers from a primary and a replica mean equal keys, values and expiries.
WALRUS_KV_HANDLER(cmd_debug) {
  (void)ops;
  if (equals_nocase(args[1], "digest")) {
    if (args.size() != 2) {
      append_wrong_arity(reply, "debug|digest");
      return disposition::reply;
    }
    auto d = ctx.db.digest();
    char hex[33];
    std::snprintf(hex, sizeof(hex), "%016" PRIx64 "%016" PRIx64, d.keys, d.hash);
    resp::append_simple(reply, hex);
  } else {
    append_unknown_subcommand(reply, args[1], "DEBUG");
  }
  return disposition::reply;
}

}  // namespace walrus::kv::detail
