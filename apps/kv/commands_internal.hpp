// Shared by the command sources only: the handlers of the command table and
// the Redis-style reply helpers they use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "apps/kv/commands.hpp"

namespace walrus::kv::detail {

inline constexpr std::string_view not_an_integer = "ERR value is not an integer or out of range";
inline constexpr std::string_view syntax_error = "ERR syntax error";
inline constexpr std::string_view readonly_error =
    "READONLY You can't write against a read only replica.";

// `lower` must be lower case.
bool equals_nocase(std::string_view text, std::string_view lower) noexcept;
// Redis's string2ll: optional '-', no '+', no spaces, no leading zeros, no
// overflow, at most 20 characters.
bool parse_int64(std::string_view text, int64_t& out) noexcept;
// Copies `text` with CR and LF turned into spaces, at most `max_bytes`.
std::string sanitized(std::string_view text, size_t max_bytes = 128);

void append_wrong_arity(std::string& reply, std::string_view command);
void append_unknown_subcommand(std::string& reply, std::string_view sub, std::string_view cmd);

#define WALRUS_KV_HANDLER(name)                                                        \
  disposition name(const command_args& args, command_context& ctx, std::string& reply, \
                   op_batch& ops)

// commands.cpp: reads and connection commands.
WALRUS_KV_HANDLER(cmd_get);
WALRUS_KV_HANDLER(cmd_mget);
WALRUS_KV_HANDLER(cmd_exists);
WALRUS_KV_HANDLER(cmd_ttl);
WALRUS_KV_HANDLER(cmd_pttl);
WALRUS_KV_HANDLER(cmd_dbsize);
WALRUS_KV_HANDLER(cmd_ping);
WALRUS_KV_HANDLER(cmd_echo);
WALRUS_KV_HANDLER(cmd_select);
WALRUS_KV_HANDLER(cmd_quit);
WALRUS_KV_HANDLER(cmd_server);
WALRUS_KV_HANDLER(cmd_wait);

// commands_write.cpp: writes, evaluated by the primary's writer.
WALRUS_KV_HANDLER(cmd_set);
WALRUS_KV_HANDLER(cmd_setnx);
WALRUS_KV_HANDLER(cmd_mset);
WALRUS_KV_HANDLER(cmd_del);
WALRUS_KV_HANDLER(cmd_incr);
WALRUS_KV_HANDLER(cmd_decr);
WALRUS_KV_HANDLER(cmd_incrby);
WALRUS_KV_HANDLER(cmd_decrby);
WALRUS_KV_HANDLER(cmd_flushall);

// commands_admin.cpp: COMMAND, CONFIG, CLIENT, HELLO, DEBUG.
WALRUS_KV_HANDLER(cmd_command);
WALRUS_KV_HANDLER(cmd_config);
WALRUS_KV_HANDLER(cmd_client);
WALRUS_KV_HANDLER(cmd_hello);
WALRUS_KV_HANDLER(cmd_debug);

}  // namespace walrus::kv::detail
