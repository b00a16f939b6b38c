// The command layer of walrus-kv: what a parsed request means, independent
// of sockets and actors. Given the arguments, the store, the node's role and
// a clock, execute() either answers at once (reads, errors, connection
// commands), or, for a write on the primary, evaluates it against the
// current state into the ops of one WAL transaction plus the reply to send
// once that transaction is durable, or hands INFO/ROLE/WAIT to the server
// (they need replication state).
//
// The write flow this layer is designed for (docs/kv.md, "Write flow"):
// every write command of a primary runs on ONE writer (thread or actor), in
// arrival order:
//   1. execute() -> disposition::replicate, `ops` = one transaction, `reply`;
//   2. if ops is not empty: append ops.entries() to the WAL as one
//      transaction (-> first..last sequence), then store.apply() it, the
//      same apply() replicas run: the store is only changed by what the WAL
//      holds;
//   3. release `reply` once the WAL is durable up to `last` (or, for an
//      empty batch, up to the last sequence appended before: the reply
//      reflects that state), in the connection's request order.
// Because step 2 completes before the writer evaluates the next command,
// INCR, SET NX/XX and DEL counts always see every earlier write; two
// connections running INCR on one key concurrently get n+1 and n+2. Were
// writes evaluated on connection threads, both could read n and both log
// n+1 (a lost update). Reads run on any thread against the applied state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apps/kv/clock.hpp"
#include "apps/kv/ops.hpp"
#include "apps/kv/store.hpp"

namespace walrus::kv {

enum class node_role : uint8_t { primary, replica };

// What one client connection carries between commands.
struct session {
  uint64_t id = 0;   // CLIENT ID
  std::string name;  // CLIENT SETNAME
};

struct command_context {
  const store& db;  // read only: writes become ops
  node_role role;
  const clock& time;
  session* client = nullptr;  // may be null: CLIENT SETNAME is then forgotten
};

enum class disposition : uint8_t {
  reply,      // `reply` holds the answer: send it now
  replicate,  // a primary's write: `ops` (maybe empty) and the reply to release when durable
  server,     // INFO, ROLE, WAIT (arity checked, nothing written): the server answers
  close,      // QUIT: send `reply`, then close the connection
};

// Command flags (COMMAND INFO shows them; the server routes by them).
enum command_flag : uint32_t {
  flag_write = 1u << 0,     // changes the store: runs on the writer of a primary
  flag_readonly = 1u << 1,  // reads the store: any thread
  flag_server = 1u << 2,    // answered by the server (replication state)
  flag_fast = 1u << 3,
  flag_admin = 1u << 4,
};

using command_args = std::vector<std::string_view>;

using command_handler = disposition (*)(const command_args& args, command_context& ctx,
                                        std::string& reply, op_batch& ops);

struct command_spec {
  std::string_view name;  // lower case
  int arity;              // Redis's convention: n exactly, -n at least n (name included)
  uint32_t flags;
  int first_key;  // COMMAND INFO key positions
  int last_key;
  int key_step;
  command_handler handler;
};

// Case-insensitive; nullptr for an unknown command.
const command_spec* find_command(std::string_view name) noexcept;
const std::vector<command_spec>& all_commands();

// True when `args` is a write command: on a primary, hand it to the writer.
bool is_write(const command_args& args) noexcept;

// Runs one request. Appends the RESP reply to `reply` and, for
// disposition::replicate, the transaction's ops to `ops` (which the caller
// clears between commands). Precondition: !args.empty().
[[nodiscard]] disposition execute(const command_args& args, command_context& ctx,
                                  std::string& reply, op_batch& ops);

// Active expiry, for the primary's writer to run now and then like a write
// command: Del ops for up to `max_keys` keys of the next shard that are
// expired at ctx.time (replicas never expire keys themselves, they apply
// these Dels). Returns the number of ops added.
size_t plan_expire_sweep(command_context& ctx, size_t& shard_cursor, size_t max_keys,
                         op_batch& ops);

}  // namespace walrus::kv
