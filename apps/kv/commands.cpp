// The command table, dispatch (lookup, arity, READONLY) and the commands
// that read the store or only concern the connection.
#include "apps/kv/commands.hpp"

#include <cassert>

#include "apps/kv/commands_internal.hpp"
#include "apps/kv/resp.hpp"

namespace walrus::kv {

using namespace detail;

namespace {

constexpr uint32_t read_fast = flag_readonly | flag_fast;
constexpr uint32_t write_fast = flag_write | flag_fast;

// The hottest commands first: lookup is a linear scan.
const std::vector<command_spec> command_table = {
    {"get", 2, read_fast, 1, 1, 1, cmd_get},
    {"set", -3, flag_write, 1, 1, 1, cmd_set},
    {"mget", -2, read_fast, 1, -1, 1, cmd_mget},
    {"mset", -3, flag_write, 1, -1, 2, cmd_mset},
    {"incr", 2, write_fast, 1, 1, 1, cmd_incr},
    {"decr", 2, write_fast, 1, 1, 1, cmd_decr},
    {"incrby", 3, write_fast, 1, 1, 1, cmd_incrby},
    {"decrby", 3, write_fast, 1, 1, 1, cmd_decrby},
    {"del", -2, flag_write, 1, -1, 1, cmd_del},
    {"unlink", -2, write_fast, 1, -1, 1, cmd_del},
    {"exists", -2, read_fast, 1, -1, 1, cmd_exists},
    {"setnx", 3, write_fast, 1, 1, 1, cmd_setnx},
    {"ttl", 2, read_fast, 1, 1, 1, cmd_ttl},
    {"pttl", 2, read_fast, 1, 1, 1, cmd_pttl},
    {"dbsize", 1, read_fast, 0, 0, 0, cmd_dbsize},
    {"flushall", -1, flag_write, 0, 0, 0, cmd_flushall},
    {"flushdb", -1, flag_write, 0, 0, 0, cmd_flushall},
    {"ping", -1, flag_fast, 0, 0, 0, cmd_ping},
    {"echo", 2, flag_fast, 0, 0, 0, cmd_echo},
    {"select", 2, flag_fast, 0, 0, 0, cmd_select},
    {"quit", -1, flag_fast, 0, 0, 0, cmd_quit},
    {"info", -1, flag_server, 0, 0, 0, cmd_server},
    {"role", 1, flag_server | flag_fast, 0, 0, 0, cmd_server},
    {"wait", 3, flag_server, 0, 0, 0, cmd_wait},
    {"bgsave", -1, flag_server | flag_admin, 0, 0, 0, cmd_server},
    {"command", -1, 0, 0, 0, 0, cmd_command},
    {"config", -2, flag_admin, 0, 0, 0, cmd_config},
    {"client", -2, 0, 0, 0, 0, cmd_client},
    {"hello", -1, flag_fast, 0, 0, 0, cmd_hello},
    {"debug", -2, flag_readonly | flag_admin, 0, 0, 0, cmd_debug},
};

bool arity_ok(int arity, size_t argc) noexcept {
  return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
}

void append_unknown_command(std::string& reply, const command_args& args) {
  // Redis's wording and truncation, so clients and tests see the same text.
  std::string text = "ERR unknown command '" + sanitized(args[0]) + "', with args beginning with: ";
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < 128; ++i)
    listed += "'" + sanitized(args[i], 128 - listed.size()) + "' ";
  resp::append_error(reply, text + listed);
}

}  // namespace

namespace detail {

bool equals_nocase(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool parse_int64(std::string_view text, int64_t& out) noexcept {
  if (text.empty() || text.size() > 20) return false;
  if (text == "0") {
    out = 0;
    return true;
  }
  bool negative = text[0] == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text[0] < '1' || text[0] > '9') return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    auto digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (negative) {
    if (value > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = static_cast<int64_t>(0 - value);
  } else {
    if (value > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(value);
  }
  return true;
}

std::string sanitized(std::string_view text, size_t max_bytes) {
  std::string out{text.substr(0, max_bytes)};
  for (auto& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

void append_wrong_arity(std::string& reply, std::string_view command) {
  std::string name{command};
  for (auto& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  resp::append_error(reply, "ERR wrong number of arguments for '" + sanitized(name) + "' command");
}

void append_unknown_subcommand(std::string& reply, std::string_view sub, std::string_view cmd) {
  resp::append_error(
      reply, "ERR unknown subcommand '" + sanitized(sub) + "'. Try " + std::string{cmd} + " HELP.");
}

WALRUS_KV_HANDLER(cmd_get) {
  (void)ops;
  if (!ctx.db.read(args[1], ctx.time.now_ms(),
                   [&](const record& r) { resp::append_bulk(reply, r.value); }))
    resp::append_null(reply);
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_mget) {
  (void)ops;
  resp::append_array_header(reply, args.size() - 1);
  ctx.db.read_many(args.data() + 1, args.size() - 1, ctx.time.now_ms(),
                   [&](size_t, const record* r) {
                     if (r != nullptr)
                       resp::append_bulk(reply, r->value);
                     else
                       resp::append_null(reply);
                   });
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_exists) {
  (void)ops;
  int64_t count = 0;
  ctx.db.read_many(args.data() + 1, args.size() - 1, ctx.time.now_ms(),
                   [&](size_t, const record* r) { count += r != nullptr; });
  resp::append_integer(reply, count);
  return disposition::reply;
}

namespace {

// Remaining time to live in ms: -2 when absent, -1 without expiry.
int64_t remaining_ms(command_context& ctx, std::string_view key) {
  auto now = ctx.time.now_ms();
  int64_t out = -2;
  ctx.db.read(key, now,
              [&](const record& r) { out = r.expire_at_ms == 0 ? -1 : r.expire_at_ms - now; });
  return out;
}

}  // namespace

WALRUS_KV_HANDLER(cmd_ttl) {
  (void)ops;
  auto ms = remaining_ms(ctx, args[1]);
  resp::append_integer(reply, ms < 0 ? ms : (ms + 500) / 1000);
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_pttl) {
  (void)ops;
  resp::append_integer(reply, remaining_ms(ctx, args[1]));
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_dbsize) {
  (void)args, (void)ops;
  resp::append_integer(reply, static_cast<int64_t>(ctx.db.dbsize()));
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_ping) {
  (void)ctx, (void)ops;
  if (args.size() > 2) {
    append_wrong_arity(reply, args[0]);
  } else if (args.size() == 2) {
    resp::append_bulk(reply, args[1]);
  } else {
    resp::append_simple(reply, "PONG");
  }
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_echo) {
  (void)ctx, (void)ops;
  resp::append_bulk(reply, args[1]);
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_select) {
  (void)ctx, (void)ops;
  int64_t index = 0;
  if (!parse_int64(args[1], index))
    resp::append_error(reply, not_an_integer);
  else if (index != 0)
    resp::append_error(reply, "ERR DB index is out of range");
  else
    resp::append_simple(reply, "OK");
  return disposition::reply;
}

WALRUS_KV_HANDLER(cmd_quit) {
  (void)args, (void)ctx, (void)ops;
  resp::append_simple(reply, "OK");
  return disposition::close;
}

WALRUS_KV_HANDLER(cmd_server) {
  (void)args, (void)ctx, (void)reply, (void)ops;
  return disposition::server;
}

WALRUS_KV_HANDLER(cmd_wait) {
  (void)ops;
  int64_t replicas = 0;
  int64_t timeout_ms = 0;
  if (!parse_int64(args[1], replicas) || !parse_int64(args[2], timeout_ms)) {
    resp::append_error(reply, not_an_integer);
  } else if (timeout_ms < 0) {
    resp::append_error(reply, "ERR timeout is negative");
  } else if (ctx.role == node_role::replica) {
    resp::append_error(reply, "ERR WAIT cannot be used with replica instances.");
  } else {
    return disposition::server;
  }
  return disposition::reply;
}

}  // namespace detail

const std::vector<command_spec>& all_commands() {
  return command_table;
}

const command_spec* find_command(std::string_view name) noexcept {
  for (auto& spec : command_table)
    if (equals_nocase(name, spec.name)) return &spec;
  return nullptr;
}

bool is_write(const command_args& args) noexcept {
  if (args.empty()) return false;
  auto* spec = find_command(args[0]);
  return spec != nullptr && (spec->flags & flag_write) != 0;
}

disposition execute(const command_args& args, command_context& ctx, std::string& reply,
                    op_batch& ops) {
  assert(!args.empty());
  auto* spec = find_command(args[0]);
  if (spec == nullptr) {
    append_unknown_command(reply, args);
    return disposition::reply;
  }
  if (!arity_ok(spec->arity, args.size())) {
    append_wrong_arity(reply, spec->name);
    return disposition::reply;
  }
  if ((spec->flags & flag_write) != 0 && ctx.role == node_role::replica) {
    resp::append_error(reply, readonly_error);
    return disposition::reply;
  }
  auto before = ops.size();
  auto outcome = spec->handler(args, ctx, reply, ops);
  assert(outcome == disposition::replicate || ops.size() == before);
  assert(outcome != disposition::replicate || ctx.role == node_role::primary);
  (void)before;
  return outcome;
}

}  // namespace walrus::kv
