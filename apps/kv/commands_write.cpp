// Write commands. On a primary they run on the one writer (commands.hpp):
// each evaluates against the current store into the ops of one transaction
// and the reply to release once that transaction is durable. Conditions
// (NX/XX), counters (INCR) and counts (DEL) are decided here, so the log
// holds only deterministic effects.
#include <charconv>
#include <climits>
#include <unordered_set>

#include "apps/kv/commands_internal.hpp"
#include "apps/kv/resp.hpp"

namespace walrus::kv::detail {

namespace {

// A "now" at which nothing has expired: reads then see what is held.
constexpr int64_t ignoring_expiry = INT64_MIN;

constexpr std::string_view invalid_expire = "ERR invalid expire time in 'set' command";

struct set_options {
  enum class condition : uint8_t { none, nx, xx } when = condition::none;
  enum class expiry : uint8_t { none, ex, px, exat, pxat, keepttl } ttl = expiry::none;
  bool get = false;
  int64_t amount = 0;  // the EX/PX/EXAT/PXAT argument
};

// Parses the options after `SET key value`; false with an error in `reply`.
bool parse_set_options(const command_args& args, set_options& out, std::string& reply) {
  using expiry = set_options::expiry;
  using condition = set_options::condition;
  for (size_t i = 3; i < args.size(); ++i) {
    auto arg = args[i];
    if (equals_nocase(arg, "nx") || equals_nocase(arg, "xx")) {
      if (out.when != condition::none) return resp::append_error(reply, syntax_error), false;
      out.when = equals_nocase(arg, "nx") ? condition::nx : condition::xx;
    } else if (equals_nocase(arg, "get")) {
      out.get = true;
    } else if (equals_nocase(arg, "keepttl")) {
      if (out.ttl != expiry::none) return resp::append_error(reply, syntax_error), false;
      out.ttl = expiry::keepttl;
    } else {
      expiry kind = equals_nocase(arg, "ex")     ? expiry::ex
                    : equals_nocase(arg, "px")   ? expiry::px
                    : equals_nocase(arg, "exat") ? expiry::exat
                    : equals_nocase(arg, "pxat") ? expiry::pxat
                                                 : expiry::none;
      if (kind == expiry::none || out.ttl != expiry::none || i + 1 == args.size())
        return resp::append_error(reply, syntax_error), false;
      if (!parse_int64(args[++i], out.amount))
        return resp::append_error(reply, not_an_integer), false;
      if (out.amount <= 0) return resp::append_error(reply, invalid_expire), false;
      out.ttl = kind;
    }
  }
  return true;
}

// The absolute expiry of SET's options (0 = none); false on overflow.
bool absolute_expiry(const set_options& opts, int64_t now_ms, int64_t current_ms, int64_t& out) {
  using expiry = set_options::expiry;
  auto v = opts.amount;
  switch (opts.ttl) {
    case expiry::none: out = 0; return true;
    case expiry::keepttl: out = current_ms; return true;
    case expiry::ex:
      if (v > (INT64_MAX - now_ms) / 1000) return false;
      out = now_ms + v * 1000;
      return true;
    case expiry::px:
      if (v > INT64_MAX - now_ms) return false;
      out = now_ms + v;
      return true;
    case expiry::exat:
      if (v > INT64_MAX / 1000) return false;
      out = v * 1000;
      return true;
    case expiry::pxat: out = v; return true;
  }
  return false;
}

bool held(const store& db, std::string_view key) {
  return db.read(key, ignoring_expiry, [](const record&) {});
}

void append_old_value(std::string& reply, bool live, const record& current) {
  if (live)
    resp::append_bulk(reply, current.value);
  else
    resp::append_null(reply);
}

// INCR, DECR, INCRBY, DECRBY: logged as the Set of the result, keeping the
// key's expiry as Redis does.
disposition increment(std::string_view key, int64_t delta, command_context& ctx, std::string& reply,
                      op_batch& ops) {
  record current;
  int64_t value = 0;
  int64_t expire_at_ms = 0;
  if (ctx.db.get(key, ctx.time.now_ms(), current)) {
    if (!parse_int64(current.value, value)) {
      resp::append_error(reply, not_an_integer);
      return disposition::reply;
    }
    expire_at_ms = current.expire_at_ms;
  }
  if ((delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta)) {
    resp::append_error(reply, "ERR increment or decrement would overflow");
    return disposition::reply;
  }
  value += delta;
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  ops.add_set(key, std::string_view{digits, static_cast<size_t>(end - digits)}, expire_at_ms);
  resp::append_integer(reply, value);
  return disposition::replicate;
}

}  // namespace

WALRUS_KV_HANDLER(cmd_set) {
  set_options opts;
  if (!parse_set_options(args, opts, reply)) return disposition::reply;
  auto key = args[1];
  auto now = ctx.time.now_ms();
  // Plain SET (the benchmark's) does not read the store.
  bool needs_current = opts.get || opts.when != set_options::condition::none ||
                       opts.ttl == set_options::expiry::keepttl;
  record current;
  bool live = needs_current && ctx.db.get(key, now, current);
  int64_t expire_at_ms = 0;
  if (!absolute_expiry(opts, now, live ? current.expire_at_ms : 0, expire_at_ms)) {
    resp::append_error(reply, invalid_expire);
    return disposition::reply;
  }
  if ((opts.when == set_options::condition::nx && live) ||
      (opts.when == set_options::condition::xx && !live)) {
    // Nothing to log; the reply still waits for what it saw to be durable.
    append_old_value(reply, opts.get && live, current);
    return disposition::replicate;
  }
  if (expire_at_ms != 0 && expire_at_ms <= now) {
    // Expired on arrival (EXAT in the past): the effect is a delete.
    if (held(ctx.db, key)) ops.add_del(key);
  } else {
    ops.add_set(key, args[2], expire_at_ms);
  }
  if (opts.get)
    append_old_value(reply, live, current);
  else
    resp::append_simple(reply, "OK");
  return disposition::replicate;
}

WALRUS_KV_HANDLER(cmd_setnx) {
  bool live = ctx.db.read(args[1], ctx.time.now_ms(), [](const record&) {});
  if (!live) ops.add_set(args[1], args[2], 0);
  resp::append_integer(reply, live ? 0 : 1);
  return disposition::replicate;
}

WALRUS_KV_HANDLER(cmd_mset) {
  (void)ctx;
  if (args.size() % 2 == 0) {
    append_wrong_arity(reply, args[0]);
    return disposition::reply;
  }
  for (size_t i = 1; i < args.size(); i += 2) ops.add_set(args[i], args[i + 1], 0);
  resp::append_simple(reply, "OK");
  return disposition::replicate;
}

WALRUS_KV_HANDLER(cmd_del) {
  // Logs a Del for every named key the store holds (expired ones too: that
  // is their cleanup); counts the live ones, each key once.
  auto now = ctx.time.now_ms();
  std::unordered_set<std::string_view> seen;
  int64_t removed = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (!seen.insert(args[i]).second) continue;
    bool present = false;
    bool live = false;
    ctx.db.read(args[i], ignoring_expiry, [&](const record& r) {
      present = true;
      live = !r.expired(now);
    });
    if (present) ops.add_del(args[i]);
    removed += live;
  }
  resp::append_integer(reply, removed);
  return disposition::replicate;
}

WALRUS_KV_HANDLER(cmd_incr) {
  return increment(args[1], 1, ctx, reply, ops);
}

WALRUS_KV_HANDLER(cmd_decr) {
  return increment(args[1], -1, ctx, reply, ops);
}

WALRUS_KV_HANDLER(cmd_incrby) {
  int64_t delta = 0;
  if (!parse_int64(args[2], delta)) {
    resp::append_error(reply, not_an_integer);
    return disposition::reply;
  }
  return increment(args[1], delta, ctx, reply, ops);
}

WALRUS_KV_HANDLER(cmd_decrby) {
  int64_t delta = 0;
  if (!parse_int64(args[2], delta)) {
    resp::append_error(reply, not_an_integer);
    return disposition::reply;
  }
  if (delta == INT64_MIN) {
    resp::append_error(reply, "ERR decrement would overflow");
    return disposition::reply;
  }
  return increment(args[1], -delta, ctx, reply, ops);
}

WALRUS_KV_HANDLER(cmd_flushall) {
  (void)ctx;
  if (args.size() > 2 ||
      (args.size() == 2 && !equals_nocase(args[1], "async") && !equals_nocase(args[1], "sync"))) {
    resp::append_error(reply, syntax_error);
    return disposition::reply;
  }
  ops.add_flush_all();
  resp::append_simple(reply, "OK");
  return disposition::replicate;
}

}  // namespace walrus::kv::detail

namespace walrus::kv {

size_t plan_expire_sweep(command_context& ctx, size_t& shard_cursor, size_t max_keys,
                         op_batch& ops) {
  std::vector<std::string> expired;
  ctx.db.collect_expired(shard_cursor, ctx.time.now_ms(), max_keys, expired);
  for (auto& key : expired) ops.add_del(key);
  return expired.size();
}

}  // namespace walrus::kv
