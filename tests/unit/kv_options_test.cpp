#define CAF_SUITE kv_options
#include "caf/test/unit_test.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/kv/server.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/settings.hpp"

using namespace walrus;
using namespace walrus::kv::server;

namespace {

// A folder for config files, removed with the fixture.
struct config_files {
  std::filesystem::path dir;

  config_files() {
    char pattern[] = "/tmp/walrus-kv-options-XXXXXX";
    CAF_REQUIRE(::mkdtemp(pattern) != nullptr);
    dir = pattern;
  }
  ~config_files() { std::filesystem::remove_all(dir); }

  std::string write(const std::string& name, const std::string& text) {
    auto path = (dir / name).string();
    std::ofstream out(path);
    out << text;
    return path;
  }

  // parse_options() on "walrus-kv" + args.
  static result<options> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "walrus-kv");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_options(static_cast<int>(argv.size()), argv.data());
  }

  // The error message of a parse that must fail.
  static std::string error_of(std::vector<std::string> args) {
    auto parsed = parse(std::move(args));
    CAF_REQUIRE(!parsed);
    return parsed.error().message();
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

CAF_TEST_FIXTURE_SCOPE(kv_options_tests, config_files)

CAF_TEST(the walrus_kv section sets the same options as the command line) {
  auto file = write("p.ini", R"(
; a primary
[walrus-kv]
dir = "/var/lib/walrus/p"
bind = "127.0.0.2"
port = 6400
repl-port = "7400"
codec = "zstd:3"
sync = "interval:50"
secret = "s3cret"
cluster = "east"
max-clients = 77
max-request-bytes = 4096
metrics-port = 9121
)");
  auto parsed = parse({"primary", "--config", file});
  CAF_REQUIRE(parsed);
  auto& o = *parsed;
  CAF_CHECK_EQUAL(o.dir, "/var/lib/walrus/p");
  CAF_CHECK_EQUAL(o.bind, "127.0.0.2");
  CAF_CHECK_EQUAL(o.port, 6400u);
  CAF_CHECK_EQUAL(o.repl_port, 7400u);
  CAF_CHECK_EQUAL(codec::to_string(o.codec), "zstd:3");
  CAF_CHECK_EQUAL(o.sync.to_string(), "interval:50");
  CAF_CHECK(o.secret && *o.secret == "s3cret");
  CAF_CHECK_EQUAL(o.cluster_id, "east");
  CAF_CHECK_EQUAL(o.max_clients, 77u);
  CAF_CHECK_EQUAL(o.max_request_bytes, 4096u);
  CAF_REQUIRE(o.metrics_port.has_value());
  CAF_CHECK_EQUAL(*o.metrics_port, 9121u);
  CAF_CHECK_EQUAL(o.config_file, file);
}

CAF_TEST(the command line overrides the file wherever config stands) {
  auto file = write("r.ini", R"([walrus-kv]
dir = "/from/file"
port = 6401
primary = "10.0.0.1:7379"
metrics-port = 0
)");
  auto before = parse({"replica", "--port", "6500", "--config", file});
  auto after = parse({"replica", "--config=" + file, "--port=6500", "--dir", "/cli"});
  CAF_REQUIRE(before && after);
  CAF_CHECK_EQUAL(before->port, 6500u);
  CAF_CHECK_EQUAL(before->dir, "/from/file");
  CAF_CHECK_EQUAL(before->primary_host, "10.0.0.1");
  CAF_CHECK_EQUAL(before->primary_port, 7379u);
  CAF_CHECK(before->metrics_port && *before->metrics_port == 0);
  CAF_CHECK_EQUAL(after->port, 6500u);
  CAF_CHECK_EQUAL(after->dir, "/cli");
}

CAF_TEST(metrics port on the command line) {
  auto on = parse({"primary", "--dir", "d", "--metrics-port", "0"});
  auto off = parse({"primary", "--dir", "d"});
  CAF_REQUIRE(on && off);
  CAF_CHECK(on->metrics_port && *on->metrics_port == 0);
  CAF_CHECK(!off->metrics_port);
  CAF_CHECK(contains(error_of({"replica", "--dir", "d", "--primary", "h:1", "--metrics-port", "x"}),
                     "invalid --metrics-port 'x'"));
  CAF_CHECK(contains(error_of({"demo", "--metrics-port", "1"}), "does not apply"));
  CAF_CHECK(contains(error_of({"demo", "--config", "f"}), "does not apply"));
}

CAF_TEST(a missing or unreadable file is one error naming it) {
  auto missing = (dir / "nope.ini").string();
  auto msg = error_of({"primary", "--dir", "d", "--config", missing});
  CAF_CHECK(contains(msg, missing));
  CAF_CHECK(contains(msg, "No such file"));
  CAF_CHECK(contains(error_of({"primary", "--dir", "d", "--config", dir.string()}), dir.string()));
  CAF_CHECK(contains(error_of({"primary", "--dir", "d", "--config", "a", "--config", "b"}),
                     "--config given twice"));
}

CAF_TEST(a syntax error names the file line and column) {
  auto file = write("bad.ini", "[walrus-kv]\ndir = /unquoted\n");
  auto msg = error_of({"primary", "--config", file});
  CAF_CHECK(contains(msg, file + ":2:"));
  CAF_CHECK(contains(msg, "syntax error"));
  CAF_CHECK(contains(msg, "double quotes"));
}

CAF_TEST(unknown keys and sections are errors naming file and key) {
  auto own = write("own.ini", "[walrus-kv]\ndir = \"d\"\nbogus = 1\n");
  auto msg = error_of({"primary", "--config", own});
  CAF_CHECK(contains(msg, own));
  CAF_CHECK(contains(msg, "walrus-kv.bogus"));
  auto nested = write("nested.ini", "[walrus-kv]\ndir = \"d\"\nconfig = \"other.ini\"\n");
  CAF_CHECK(contains(error_of({"primary", "--config", nested}), "walrus-kv.config"));
  auto caf_key = write("caf.ini", "[walrus-kv]\ndir = \"d\"\n[scheduler]\nmax-thread = 3\n");
  msg = error_of({"primary", "--config", caf_key});
  CAF_CHECK(contains(msg, caf_key));
  CAF_CHECK(contains(msg, "scheduler.max-thread"));
  auto section = write("section.ini", "[walrus]\ndir = \"d\"\n");
  CAF_CHECK(contains(error_of({"primary", "--config", section}), "unknown section [walrus]"));
  auto outside = write("outside.ini", "dir = \"d\"\n");
  CAF_CHECK(contains(error_of({"primary", "--config", outside}), "outside a section"));
}

CAF_TEST(bad values are errors naming file and key) {
  auto port = write("port.ini", "[walrus-kv]\ndir = \"d\"\nport = 70000\n");
  auto msg = error_of({"primary", "--config", port});
  CAF_CHECK(contains(msg, port));
  CAF_CHECK(contains(msg, "invalid port '70000'"));
  auto sync = write("sync.ini", "[walrus-kv]\ndir = \"d\"\nsync = \"sometimes\"\n");
  CAF_CHECK(contains(error_of({"primary", "--config", sync}), "invalid sync 'sometimes'"));
  auto type = write("type.ini", "[walrus-kv]\ndir = \"d\"\nport = [1, 2]\n");
  CAF_CHECK(contains(error_of({"primary", "--config", type}), "[walrus-kv] port: expected"));
  auto role = write("role.ini", "[walrus-kv]\ndir = \"d\"\nrepl-port = 1\nprimary = \"h:1\"\n");
  CAF_CHECK(contains(error_of({"replica", "--config", role}),
                     "repl-port does not apply to 'walrus-kv replica'"));
  auto caf_value =
      write("cafv.ini", "[walrus-kv]\ndir = \"d\"\n[scheduler]\nmax-threads = \"x\"\n");
  msg = error_of({"primary", "--config", caf_value});
  CAF_CHECK(contains(msg, caf_value));
  CAF_CHECK(contains(msg, "scheduler.max-threads"));
}

CAF_TEST(required options may come from either source) {
  auto file = write("dir.ini", "[walrus-kv]\ndir = \"d\"\n");
  CAF_CHECK(parse({"primary", "--config", file}));
  CAF_CHECK(contains(error_of({"replica", "--config", file}), "missing --primary"));
  auto empty = write("empty.ini", "[scheduler]\nmax-threads = 3\n");
  CAF_CHECK(contains(error_of({"primary", "--config", empty}), "missing --dir"));
}

CAF_TEST(the CAF sections configure the actor system) {
  auto file = write("caf.ini", R"([walrus-kv]
dir = "d"
[scheduler]
max-threads = 3
policy = 'sharing'
[middleman]
heartbeat-interval = 250ms
)");
  auto parsed = parse({"primary", "--config", file});
  CAF_REQUIRE(parsed);
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  CAF_REQUIRE(configure_actor_system(cfg, *parsed).ok());
  auto& content = caf::content(cfg);
  CAF_CHECK_EQUAL(caf::get_or(content, "scheduler.max-threads", size_t{0}), 3u);
  CAF_CHECK_EQUAL(caf::get_or(content, "scheduler.policy", caf::atom("")), caf::atom("sharing"));
  // Without a file nothing changes.
  auto plain = parse({"primary", "--dir", "d"});
  CAF_REQUIRE(plain);
  caf::actor_system_config untouched;
  untouched.set("scheduler.max-threads", 2);
  CAF_REQUIRE(configure_actor_system(untouched, *plain).ok());
  CAF_CHECK_EQUAL(caf::get_or(caf::content(untouched), "scheduler.max-threads", size_t{0}), 2u);
}

CAF_TEST_FIXTURE_SCOPE_END()
