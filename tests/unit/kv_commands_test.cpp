#define CAF_SUITE kv_commands
#include "caf/test/unit_test.hpp"

#include <string>
#include <vector>

#include "apps/kv/commands.hpp"

using namespace walrus;
using namespace walrus::kv;

namespace {

// A node: its store, clock and one client session. run() plays the server:
// writes on the primary are appended (here: applied at once) in order.
struct node {
  store db;
  manual_clock time;
  session client{7, {}};
  node_role role = node_role::primary;
  op_batch last_ops;
  size_t transactions = 0;

  struct outcome {
    disposition how;
    std::string reply;
  };

  outcome run(std::vector<std::string_view> args) {
    command_context ctx{db, role, time, &client};
    outcome out;
    last_ops.clear();
    out.how = execute(args, ctx, out.reply, last_ops);
    if (out.how == disposition::replicate && !last_ops.empty()) {
      transaction tx;
      last_ops.to_transaction(db.applied_sequence() + 1, tx);
      CAF_REQUIRE(db.apply(tx).ok());
      ++transactions;
    }
    return out;
  }

  std::string reply(std::vector<std::string_view> args) { return run(std::move(args)).reply; }

  // The logged ops of the last command, decoded, as "set k v @exp" / "del k".
  std::vector<std::string> logged() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < last_ops.size(); ++i) {
      op o;
      CAF_REQUIRE(decode_op(last_ops.entry(i), o).ok());
      if (o.kind == op_kind::set)
        out.push_back("set " + std::string{o.key} + " " + std::string{o.value} +
                      (o.expire_at_ms ? " @" + std::to_string(o.expire_at_ms) : ""));
      else if (o.kind == op_kind::del)
        out.push_back("del " + std::string{o.key});
      else
        out.push_back("flushall");
    }
    return out;
  }
};

using strings = std::vector<std::string>;

}  // namespace

CAF_TEST(unknown commands and wrong arity get Redis errors) {
  node n;
  CAF_CHECK_EQUAL(n.reply({"foo", "a", "b"}),
                  "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  CAF_CHECK_EQUAL(n.reply({"foo"}), "-ERR unknown command 'foo', with args beginning with: \r\n");
  CAF_CHECK_EQUAL(n.reply({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  CAF_CHECK_EQUAL(n.reply({"get", "a", "b"}),
                  "-ERR wrong number of arguments for 'get' command\r\n");
  CAF_CHECK_EQUAL(n.reply({"SET", "a"}), "-ERR wrong number of arguments for 'set' command\r\n");
  CAF_CHECK_EQUAL(n.reply({"MSET", "a", "1", "b"}),
                  "-ERR wrong number of arguments for 'mset' command\r\n");
  CAF_CHECK_EQUAL(n.reply({"incr"}), "-ERR wrong number of arguments for 'incr' command\r\n");
  CAF_CHECK_EQUAL(n.reply({"PING", "a", "b"}),
                  "-ERR wrong number of arguments for 'ping' command\r\n");
  CAF_CHECK_EQUAL(n.transactions, 0u);
}

CAF_TEST(writes on a replica are refused reads are served) {
  node n;
  CAF_REQUIRE(n.run({"SET", "k", "v"}).how == disposition::replicate);
  n.role = node_role::replica;
  const std::string readonly = "-READONLY You can't write against a read only replica.\r\n";
  for (auto args : std::vector<std::vector<std::string_view>>{
           {"SET", "k", "w"}, {"del", "k"}, {"INCR", "c"}, {"MSET", "a", "1"}, {"FLUSHALL"}}) {
    auto out = n.run(args);
    CAF_CHECK(out.how == disposition::reply);
    CAF_CHECK_EQUAL(out.reply, readonly);
    CAF_CHECK(n.last_ops.empty());
  }
  CAF_CHECK_EQUAL(n.reply({"GET", "k"}), "$1\r\nv\r\n");
  // Arity is checked first, as Redis does.
  CAF_CHECK_EQUAL(n.reply({"SET", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
  CAF_CHECK(is_write({"set", "k", "v"}));
  CAF_CHECK(!is_write({"GET", "k"}));
}

CAF_TEST(incr is evaluated on the primary and logged as a set keeping the ttl) {
  node n;
  auto out = n.run({"INCR", "c"});
  CAF_CHECK(out.how == disposition::replicate);
  CAF_CHECK_EQUAL(out.reply, ":1\r\n");
  CAF_CHECK(n.logged() == strings{"set c 1"});
  CAF_CHECK_EQUAL(n.reply({"INCRBY", "c", "41"}), ":42\r\n");
  CAF_CHECK_EQUAL(n.reply({"DECR", "c"}), ":41\r\n");
  CAF_CHECK_EQUAL(n.reply({"DECRBY", "c", "-9"}), ":50\r\n");
  CAF_CHECK_EQUAL(n.reply({"GET", "c"}), "$2\r\n50\r\n");
  n.reply({"SET", "t", "10", "PX", "5000"});
  auto expiry = n.time.now_ms() + 5000;
  CAF_CHECK_EQUAL(n.reply({"INCR", "t"}), ":11\r\n");
  CAF_CHECK(n.logged() == strings{"set t 11 @" + std::to_string(expiry)});
  // Errors log nothing.
  n.reply({"SET", "s", "abc"});
  const std::string not_integer = "-ERR value is not an integer or out of range\r\n";
  for (auto args : std::vector<std::vector<std::string_view>>{
           {"INCR", "s"}, {"INCRBY", "c", "x"}, {"INCRBY", "c", "01"}}) {
    auto bad = n.run(args);
    CAF_CHECK(bad.how == disposition::reply);
    CAF_CHECK_EQUAL(bad.reply, not_integer);
    CAF_CHECK(n.last_ops.empty());
  }
  n.reply({"SET", "max", "9223372036854775807"});
  CAF_CHECK_EQUAL(n.reply({"INCR", "max"}), "-ERR increment or decrement would overflow\r\n");
  CAF_CHECK_EQUAL(n.reply({"DECRBY", "c", "-9223372036854775808"}),
                  "-ERR decrement would overflow\r\n");
  // An expired counter starts again from zero without the old expiry.
  n.time.advance_ms(5000);
  CAF_CHECK_EQUAL(n.reply({"INCR", "t"}), ":1\r\n");
  CAF_CHECK(n.logged() == strings{"set t 1"});
}

CAF_TEST(mset is one transaction of one set per pair) {
  node n;
  auto out = n.run({"MSET", "a", "1", "b", "2", "a", "3"});
  CAF_CHECK(out.how == disposition::replicate);
  CAF_CHECK_EQUAL(out.reply, "+OK\r\n");
  CAF_CHECK(n.logged() == (strings{"set a 1", "set b 2", "set a 3"}));
  CAF_CHECK_EQUAL(n.transactions, 1u);
  CAF_CHECK_EQUAL(n.db.applied_sequence(), 3u);
  CAF_CHECK_EQUAL(n.reply({"MGET", "a", "b", "zz"}), "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n");
  CAF_CHECK_EQUAL(n.reply({"EXISTS", "a", "b", "zz", "a"}), ":3\r\n");
  CAF_CHECK_EQUAL(n.reply({"DBSIZE"}), ":2\r\n");
}

CAF_TEST(set nx and xx are decided on the primary) {
  node n;
  auto skipped = n.run({"SET", "k", "v", "XX"});
  CAF_CHECK(skipped.how == disposition::replicate);
  CAF_CHECK_EQUAL(skipped.reply, "$-1\r\n");
  CAF_CHECK(n.last_ops.empty());
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "v", "nx"}), "+OK\r\n");
  CAF_CHECK(n.logged() == strings{"set k v"});
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "w", "NX"}), "$-1\r\n");
  CAF_CHECK(n.last_ops.empty());
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "w", "XX", "GET"}), "$1\r\nv\r\n");
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "x", "NX", "GET"}), "$1\r\nw\r\n");
  CAF_CHECK_EQUAL(n.reply({"SETNX", "k", "y"}), ":0\r\n");
  CAF_CHECK_EQUAL(n.reply({"SETNX", "j", "y"}), ":1\r\n");
  CAF_CHECK_EQUAL(n.reply({"GET", "k"}), "$1\r\nw\r\n");
  const std::string syntax = "-ERR syntax error\r\n";
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "v", "NX", "XX"}), syntax);
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "v", "EX"}), syntax);
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "v", "EX", "1", "PX", "1"}), syntax);
  CAF_CHECK_EQUAL(n.reply({"SET", "k", "v", "bogus"}), syntax);
}

CAF_TEST(set ex px exat pxat keepttl become an absolute expiry) {
  node n;
  auto now = n.time.now_ms();
  n.reply({"SET", "a", "1", "EX", "10"});
  CAF_CHECK(n.logged() == strings{"set a 1 @" + std::to_string(now + 10000)});
  n.reply({"SET", "a", "1", "px", "250"});
  CAF_CHECK(n.logged() == strings{"set a 1 @" + std::to_string(now + 250)});
  n.reply({"SET", "a", "1", "EXAT", "1800000000"});
  CAF_CHECK(n.logged() == strings{"set a 1 @1800000000000"});
  n.reply({"SET", "a", "2", "KEEPTTL"});
  CAF_CHECK(n.logged() == strings{"set a 2 @1800000000000"});
  n.reply({"SET", "a", "3"});
  CAF_CHECK(n.logged() == strings{"set a 3"});
  n.reply({"SET", "b", "1", "PXAT", std::to_string(now + 100)});
  CAF_CHECK_EQUAL(n.reply({"PTTL", "b"}), ":100\r\n");
  CAF_CHECK_EQUAL(n.reply({"TTL", "b"}), ":0\r\n");
  CAF_CHECK_EQUAL(n.reply({"TTL", "a"}), ":-1\r\n");
  CAF_CHECK_EQUAL(n.reply({"TTL", "none"}), ":-2\r\n");
  n.time.advance_ms(100);
  CAF_CHECK_EQUAL(n.reply({"GET", "b"}), "$-1\r\n");
  CAF_CHECK_EQUAL(n.reply({"EXISTS", "b"}), ":0\r\n");
  // A time already past deletes instead of logging a dead value.
  n.reply({"SET", "a", "4", "PXAT", "1000"});
  CAF_CHECK(n.logged() == strings{"del a"});
  CAF_CHECK_EQUAL(n.reply({"GET", "a"}), "$-1\r\n");
  const std::string invalid = "-ERR invalid expire time in 'set' command\r\n";
  CAF_CHECK_EQUAL(n.reply({"SET", "a", "1", "EX", "0"}), invalid);
  CAF_CHECK_EQUAL(n.reply({"SET", "a", "1", "PX", "-5"}), invalid);
  CAF_CHECK_EQUAL(n.reply({"SET", "a", "1", "EX", "9223372036854775"}), invalid);
  CAF_CHECK_EQUAL(n.reply({"SET", "a", "1", "EX", "ten"}),
                  "-ERR value is not an integer or out of range\r\n");
}

CAF_TEST(del counts live keys once and logs only keys held) {
  node n;
  n.reply({"MSET", "a", "1", "b", "2"});
  n.reply({"SET", "t", "x", "PX", "10"});
  n.time.advance_ms(10);
  auto out = n.run({"DEL", "a", "b", "a", "missing", "t"});
  CAF_CHECK(out.how == disposition::replicate);
  CAF_CHECK_EQUAL(out.reply, ":2\r\n");
  CAF_CHECK(n.logged() == (strings{"del a", "del b", "del t"}));
  CAF_CHECK_EQUAL(n.db.dbsize(), 0u);
  auto none = n.run({"UNLINK", "a"});
  CAF_CHECK_EQUAL(none.reply, ":0\r\n");
  CAF_CHECK(n.last_ops.empty());
}

CAF_TEST(flushall and expiry sweeps are logged) {
  node n;
  n.reply({"MSET", "a", "1", "b", "2"});
  n.reply({"SET", "t", "x", "PX", "10"});
  n.time.advance_ms(10);
  op_batch sweep;
  command_context ctx{n.db, n.role, n.time, nullptr};
  size_t cursor = 0;
  for (size_t i = 0; i < store_shard_count; ++i) plan_expire_sweep(ctx, cursor, 100, sweep);
  CAF_REQUIRE_EQUAL(sweep.size(), 1u);
  op o;
  CAF_REQUIRE(decode_op(sweep.entry(0), o).ok());
  CAF_CHECK(o.kind == op_kind::del && o.key == "t");
  CAF_CHECK_EQUAL(n.reply({"FLUSHALL"}), "+OK\r\n");
  CAF_CHECK(n.logged() == strings{"flushall"});
  CAF_CHECK_EQUAL(n.reply({"DBSIZE"}), ":0\r\n");
  CAF_CHECK_EQUAL(n.reply({"FLUSHALL", "bogus"}), "-ERR syntax error\r\n");
}

CAF_TEST(info role and wait are left to the server) {
  node n;
  CAF_CHECK(n.run({"INFO"}).how == disposition::server);
  CAF_CHECK(n.run({"info", "replication"}).how == disposition::server);
  CAF_CHECK(n.run({"ROLE"}).how == disposition::server);
  CAF_CHECK(n.run({"WAIT", "1", "100"}).how == disposition::server);
  CAF_CHECK_EQUAL(n.reply({"WAIT", "x", "100"}),
                  "-ERR value is not an integer or out of range\r\n");
  CAF_CHECK_EQUAL(n.reply({"WAIT", "1", "-1"}), "-ERR timeout is negative\r\n");
  CAF_CHECK_EQUAL(n.reply({"WAIT", "1"}), "-ERR wrong number of arguments for 'wait' command\r\n");
  n.role = node_role::replica;
  CAF_CHECK(n.run({"ROLE"}).how == disposition::server);
  CAF_CHECK(n.run({"WAIT", "1", "0"}).how == disposition::reply);
}

CAF_TEST(connection and introspection commands satisfy redis - cli and redis - benchmark) {
  node n;
  CAF_CHECK_EQUAL(n.reply({"PING"}), "+PONG\r\n");
  CAF_CHECK_EQUAL(n.reply({"ping", "hi"}), "$2\r\nhi\r\n");
  CAF_CHECK_EQUAL(n.reply({"ECHO", "x"}), "$1\r\nx\r\n");
  CAF_CHECK_EQUAL(n.reply({"SELECT", "0"}), "+OK\r\n");
  CAF_CHECK_EQUAL(n.reply({"SELECT", "1"}), "-ERR DB index is out of range\r\n");
  CAF_CHECK_EQUAL(n.reply({"COMMAND", "DOCS"}), "*0\r\n");
  CAF_CHECK_EQUAL(n.reply({"COMMAND", "COUNT"}),
                  ":" + std::to_string(all_commands().size()) + "\r\n");
  auto all = n.reply({"COMMAND"});
  CAF_CHECK(
      all.rfind("*" + std::to_string(all_commands().size()) + "\r\n*10\r\n$3\r\nget\r\n:2\r\n",
                0) == 0);
  CAF_CHECK_EQUAL(n.reply({"COMMAND", "INFO", "nope"}), "*1\r\n$-1\r\n");
  CAF_CHECK_EQUAL(n.reply({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  CAF_CHECK_EQUAL(n.reply({"config", "get", "APPENDONLY"}),
                  "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  CAF_CHECK_EQUAL(n.reply({"CONFIG", "GET", "nothing-like-it"}), "*0\r\n");
  CAF_CHECK(n.reply({"CONFIG", "GET", "*"}).rfind("*18\r\n", 0) == 0);
  CAF_CHECK(n.reply({"CONFIG", "GET", "max*"}).rfind("*6\r\n", 0) == 0);
  CAF_CHECK_EQUAL(n.reply({"CONFIG", "BOGUS"}),
                  "-ERR unknown subcommand 'BOGUS'. Try CONFIG HELP.\r\n");
  CAF_CHECK_EQUAL(n.reply({"CLIENT", "GETNAME"}), "$-1\r\n");
  CAF_CHECK_EQUAL(n.reply({"CLIENT", "SETNAME", "bench"}), "+OK\r\n");
  CAF_CHECK_EQUAL(n.reply({"client", "getname"}), "$5\r\nbench\r\n");
  CAF_CHECK_EQUAL(n.reply({"CLIENT", "SETNAME", "a b"}),
                  "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  CAF_CHECK_EQUAL(n.reply({"CLIENT", "ID"}), ":7\r\n");
  CAF_CHECK_EQUAL(n.reply({"CLIENT", "SETINFO", "lib-name", "redis-py"}), "+OK\r\n");
  CAF_CHECK(n.reply({"HELLO", "2"}).rfind("*14\r\n$6\r\nserver\r\n$9\r\nwalrus-kv\r\n", 0) == 0);
  CAF_CHECK_EQUAL(n.reply({"HELLO", "3"}), "-NOPROTO unsupported protocol version\r\n");
  auto quit = n.run({"QUIT"});
  CAF_CHECK(quit.how == disposition::close);
  CAF_CHECK_EQUAL(quit.reply, "+OK\r\n");
}

CAF_TEST(debug digest depends on the content only) {
  node primary;
  CAF_CHECK_EQUAL(primary.reply({"DEBUG", "DIGEST"}), "+" + std::string(32, '0') + "\r\n");
  CAF_CHECK_EQUAL(primary.reply({"SET", "a", "1"}), "+OK\r\n");
  CAF_CHECK_EQUAL(primary.reply({"MSET", "b", "2", "c", "3"}), "+OK\r\n");
  CAF_CHECK_EQUAL(primary.reply({"SET", "e", "x", "PX", "100000"}), "+OK\r\n");
  auto digest = primary.reply({"debug", "digest"});
  CAF_REQUIRE_EQUAL(digest.size(), 1 + 32 + 2);
  CAF_CHECK(digest.rfind("+0000000000000004", 0) == 0);  // four records
  CAF_CHECK(digest != "+" + std::string(32, '0') + "\r\n");
  // The same content reached another way (other order, other sequence, a
  // replica's role) has the same digest.
  node other;
  CAF_CHECK_EQUAL(other.reply({"SET", "c", "old"}), "+OK\r\n");
  CAF_CHECK_EQUAL(other.reply({"MSET", "c", "3", "b", "2"}), "+OK\r\n");
  CAF_CHECK_EQUAL(other.reply({"SET", "e", "x", "PX", "100000"}), "+OK\r\n");
  CAF_CHECK_EQUAL(other.reply({"SET", "a", "1"}), "+OK\r\n");
  CAF_CHECK(other.db.applied_sequence() != primary.db.applied_sequence());
  other.role = node_role::replica;
  CAF_CHECK_EQUAL(other.reply({"DEBUG", "DIGEST"}), digest);
  // Any difference shows: a value, an expiry, a missing key.
  other.role = node_role::primary;
  CAF_CHECK_EQUAL(other.reply({"SET", "a", "2"}), "+OK\r\n");
  CAF_CHECK(other.reply({"DEBUG", "DIGEST"}) != digest);
  CAF_CHECK_EQUAL(other.reply({"SET", "a", "1"}), "+OK\r\n");
  CAF_CHECK_EQUAL(other.reply({"DEBUG", "DIGEST"}), digest);
  CAF_CHECK_EQUAL(other.reply({"SET", "e", "x", "PX", "100001"}), "+OK\r\n");
  CAF_CHECK(other.reply({"DEBUG", "DIGEST"}) != digest);
  CAF_CHECK_EQUAL(primary.reply({"DEL", "a"}), ":1\r\n");
  CAF_CHECK(primary.reply({"DEBUG", "DIGEST"}).rfind("+0000000000000003", 0) == 0);
  // Errors as Redis.
  CAF_CHECK_EQUAL(primary.reply({"DEBUG"}),
                  "-ERR wrong number of arguments for 'debug' command\r\n");
  CAF_CHECK_EQUAL(primary.reply({"DEBUG", "SEGFAULT"}),
                  "-ERR unknown subcommand 'SEGFAULT'. Try DEBUG HELP.\r\n");
  CAF_CHECK_EQUAL(primary.reply({"DEBUG", "DIGEST", "x"}),
                  "-ERR wrong number of arguments for 'debug|digest' command\r\n");
  CAF_CHECK(primary.run({"DEBUG", "DIGEST"}).how == disposition::reply);
}
