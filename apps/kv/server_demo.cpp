// `walrus-kv demo`: a primary and two replicas as separate processes on free
// loopback ports (port 0; each node prints the port it got), driven through
// a real RESP connection. Data and each node's log live under --dir
// (default ./demo-data), which the demo creates and never deletes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/kv/client.hpp"
#include "apps/kv/server.hpp"
#include "apps/kv/server_process.hpp"

namespace walrus::kv::server {

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Children to terminate when the demo is interrupted.
std::atomic<pid_t> children[3];

void on_interrupt(int sig) {
  for (auto& c : children) {
    pid_t pid = c.load();
    if (pid > 0) ::kill(pid, SIGTERM);
  }
  ::_exit(128 + sig);
}

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

class demo_failed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class T>
T need(result<T> r, const std::string& what) {
  if (!r) throw demo_failed(what + ": " + r.error().to_string());
  return std::move(*r);
}

std::unique_ptr<client> connect_to(uint16_t port) {
  return need(client::connect("127.0.0.1", port),
              "connecting to 127.0.0.1:" + std::to_string(port));
}

// INFO <section> as field -> value.
std::map<std::string, std::string> info(client& c, const std::string& section) {
  auto r = need(c.command({"INFO", section}), "INFO " + section);
  if (r.type != reply::kind::bulk) throw demo_failed("INFO answered " + r.to_string());
  return parse_info(r.text);
}

uint64_t number(const std::map<std::string, std::string>& fields, const std::string& name) {
  auto i = fields.find(name);
  return i == fields.end() ? 0 : std::strtoull(i->second.c_str(), nullptr, 10);
}

// The value of `name` in a "k=v,k=v" INFO value.
std::string sub_field(const std::string& value, const std::string& name) {
  size_t at = 0;
  while (at < value.size()) {
    auto end = value.find(',', at);
    if (end == std::string::npos) end = value.size();
    auto item = value.substr(at, end - at);
    if (item.compare(0, name.size() + 1, name + "=") == 0) return item.substr(name.size() + 1);
    at = end + 1;
  }
  return {};
}

struct demo {
  fs::path dir;
  std::string program;
  std::string tag;  // makes this run's values differ from earlier runs on the same folder
  node_process primary;
  node_process replicas[2];
  std::unique_ptr<client> writer;
  uint64_t written = 0;

  std::string key(uint64_t i) const { return "demo:key:" + std::to_string(i); }
  std::string value(uint64_t i) const { return "value-" + std::to_string(i) + "-" + tag; }

  void track() {
    children[0] = primary.pid();
    children[1] = replicas[0].pid();
    children[2] = replicas[1].pid();
  }

  node_process start_replica(int n) {
    auto name = "replica-" + std::to_string(n);
    auto p = need(node_process::start(program,
                                      {"replica", "--dir", (dir / name).string(), "--primary",
                                       "127.0.0.1:" + std::to_string(primary.repl_port()), "--port",
                                       "0", "--replica-id", name},
                                      (dir / (name + ".log")).string()),
                  "starting " + name);
    std::printf("  %s: pid %d, RESP 127.0.0.1:%u, log %s\n", name.c_str(), p.pid(), p.resp_port(),
                p.log_path().c_str());
    return p;
  }

  // Writes keys [from, to) in pipelined batches; returns the writes per second.
  double write_keys(uint64_t from, uint64_t to) {
    auto start = steady::now();
    constexpr uint64_t batch = 100;
    for (uint64_t i = from; i < to; i += batch) {
      auto end = std::min(to, i + batch);
      for (uint64_t k = i; k < end; ++k) writer->queue({"SET", key(k), value(k)});
      if (auto st = writer->flush(); !st.ok()) throw demo_failed("sending SETs: " + st.to_string());
      for (uint64_t k = i; k < end; ++k) {
        auto r = need(writer->read_reply(), "reading a SET reply");
        if (r.type != reply::kind::simple || r.text != "OK")
          throw demo_failed("SET " + key(k) + " answered " + r.to_string());
      }
    }
    written = std::max(written, to);
    return static_cast<double>(to - from) / std::max(seconds_since(start), 1e-6);
  }

  // Waits until the replica's applied sequence reaches `sequence`; seconds taken.
  double wait_applied(uint16_t port, uint64_t sequence, milliseconds limit) {
    auto start = steady::now();
    auto c = connect_to(port);
    for (;;) {
      auto fields = info(*c, "replication");
      if (number(fields, "applied_sequence") >= sequence) return seconds_since(start);
      if (steady::now() - start > limit)
        throw demo_failed("replica on port " + std::to_string(port) + " stuck at sequence " +
                          std::to_string(number(fields, "applied_sequence")) + " of " +
                          std::to_string(sequence));
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  // Reads every key written so far from a node and compares.
  uint64_t verify(uint16_t port, const std::string& name) {
    auto c = connect_to(port);
    uint64_t good = 0;
    constexpr uint64_t batch = 500;
    for (uint64_t i = 0; i < written; i += batch) {
      auto end = std::min(written, i + batch);
      std::vector<std::string> args{"MGET"};
      for (uint64_t k = i; k < end; ++k) args.push_back(key(k));
      auto r = need(c->command(args), "MGET on " + name);
      if (r.type != reply::kind::array || r.elements.size() != end - i)
        throw demo_failed("MGET on " + name + " answered " + r.to_string());
      for (uint64_t k = i; k < end; ++k) {
        auto& e = r.elements[k - i];
        if (e.type != reply::kind::bulk || e.text != value(k))
          throw demo_failed(name + ": " + key(k) + " is " + e.to_string() + ", expected \"" +
                            value(k) + "\"");
        ++good;
      }
    }
    return good;
  }

  uint64_t primary_sequence() {
    auto c = connect_to(primary.resp_port());
    return number(info(*c, "replication"), "master_repl_offset");
  }

  void print_primary_view(const char* indent) {
    auto c = connect_to(primary.resp_port());
    auto fields = info(*c, "replication");
    std::printf("%sprimary: sequence %s, %s replica(s) connected\n", indent,
                fields["master_repl_offset"].c_str(), fields["connected_slaves"].c_str());
    for (int i = 0; fields.count("slave" + std::to_string(i)) > 0; ++i) {
      auto& v = fields["slave" + std::to_string(i)];
      std::printf(
          "%s  %-10s link %-11s applied %-6s durable %-6s lag %s entries, %s ms, %s bytes\n",
          indent, sub_field(v, "id").c_str(), sub_field(v, "state").c_str(),
          sub_field(v, "applied").c_str(), sub_field(v, "durable").c_str(),
          sub_field(v, "lag_entries").c_str(), sub_field(v, "lag_ms").c_str(),
          sub_field(v, "lag_bytes").c_str());
    }
  }

  void print_replica_view(int n) {
    auto c = connect_to(replicas[n].resp_port());
    auto fields = info(*c, "replication");
    std::printf(
        "  replica-%d: link %s, state %s, applied %s, durable %s, primary at %s, lag %s entries\n",
        n + 1, fields["master_link_status"].c_str(), fields["replica_state"].c_str(),
        fields["applied_sequence"].c_str(), fields["durable_sequence"].c_str(),
        fields["master_sequence"].c_str(), fields["lag_entries"].c_str());
  }

  void run() {
    std::printf("walrus-kv demo: data and logs in %s\n\n", dir.c_str());

    std::printf("[1/8] Starting the primary (sync group, codec zstd)\n");
    primary = need(node_process::start(program,
                                       {"primary", "--dir", (dir / "primary").string(), "--port",
                                        "0", "--repl-port", "0"},
                                       (dir / "primary.log").string()),
                   "starting the primary");
    track();
    std::printf("  primary: pid %d, RESP 127.0.0.1:%u, replication 127.0.0.1:%u, log %s\n",
                primary.pid(), primary.resp_port(), primary.repl_port(),
                primary.log_path().c_str());

    std::printf("[2/8] Starting two replicas\n");
    replicas[0] = start_replica(1);
    track();
    replicas[1] = start_replica(2);
    track();

    constexpr uint64_t first_batch = 3000;
    constexpr uint64_t second_batch = 2000;
    std::printf("[3/8] Writing %lu keys to the primary through one RESP connection\n",
                static_cast<unsigned long>(first_batch));
    writer = connect_to(primary.resp_port());
    auto rate = write_keys(0, first_batch);
    auto wait = need(writer->command({"WAIT", "2", "5000"}), "WAIT");
    std::printf("  %lu SETs acknowledged (%.0f writes/s, pipelined 100 at a time)\n",
                static_cast<unsigned long>(first_batch), rate);
    std::printf("  WAIT 2 5000 -> %s (replicas holding the last write durably)\n",
                wait.to_string().c_str());

    std::printf("[4/8] The writes arrive on both replicas\n");
    auto target = primary_sequence();
    for (int n = 0; n < 2; ++n) {
      auto took = wait_applied(replicas[n].resp_port(), target, milliseconds(20000));
      auto good = verify(replicas[n].resp_port(), "replica-" + std::to_string(n + 1));
      std::printf(
          "  replica-%d applied sequence %lu (%.3f s after the WAIT); GET of all %lu keys "
          "matches\n",
          n + 1, static_cast<unsigned long>(target), took, static_cast<unsigned long>(good));
    }
    {
      auto c = connect_to(replicas[0].resp_port());
      auto r = need(c->command({"SET", "demo:readonly", "x"}), "SET on a replica");
      std::printf("  SET on replica-1 -> %s\n", r.to_string().c_str());
    }

    std::printf("[5/8] Killing replica-2 with SIGKILL\n");
    auto killed_pid = replicas[1].pid();
    replicas[1].signal(SIGKILL);
    auto code = need(replicas[1].wait(milliseconds(5000)), "waiting for replica-2 to die");
    children[2] = 0;
    std::printf("  pid %d ended (exit status %d)\n", killed_pid, code);

    std::printf("[6/8] Writing %lu more keys while replica-2 is down\n",
                static_cast<unsigned long>(second_batch));
    rate = write_keys(first_batch, first_batch + second_batch);
    std::printf("  %lu SETs acknowledged (%.0f writes/s)\n",
                static_cast<unsigned long>(second_batch), rate);
    auto wait1 = need(writer->command({"WAIT", "2", "300"}), "WAIT");
    std::printf("  WAIT 2 300 -> %s (only replica-1 can have them)\n", wait1.to_string().c_str());
    print_primary_view("  ");

    std::printf("[7/8] Restarting replica-2 on its data folder\n");
    target = primary_sequence();
    auto restart = steady::now();
    replicas[1] = start_replica(2);
    track();
    wait_applied(replicas[1].resp_port(), target, milliseconds(30000));
    auto caught_up = seconds_since(restart);
    auto good = verify(replicas[1].resp_port(), "replica-2");
    std::printf(
        "  replica-2 caught up to sequence %lu %.3f s after it was started; all %lu keys "
        "match\n",
        static_cast<unsigned long>(target), caught_up, static_cast<unsigned long>(good));
    good = verify(replicas[0].resp_port(), "replica-1");
    std::printf("  replica-1: all %lu keys match\n", static_cast<unsigned long>(good));
    auto wait2 = need(writer->command({"WAIT", "2", "5000"}), "WAIT");
    std::printf("  WAIT 2 5000 -> %s\n", wait2.to_string().c_str());

    std::printf("[8/8] Positions and lag (INFO replication)\n");
    print_primary_view("  ");
    print_replica_view(0);
    print_replica_view(1);

    writer.reset();
    std::printf("\nStopping the nodes (SIGTERM)\n");
    bool clean = true;
    auto stop = [&](node_process& p, const char* name) {
      auto r = p.stop(milliseconds(15000));
      if (!r || *r != 0) {
        clean = false;
        std::printf(
            "  %s: %s\n", name,
            r ? ("exit code " + std::to_string(*r)).c_str() : r.error().to_string().c_str());
      } else {
        std::printf("  %s: exit code 0\n", name);
      }
    };
    stop(replicas[0], "replica-1");
    stop(replicas[1], "replica-2");
    stop(primary, "primary");
    for (auto& c : children) c = 0;
    if (!clean)
      throw demo_failed("a node did not stop cleanly (see its log under " + dir.string() + ")");
    std::printf(
        "\nDemo complete. Data and logs stay in %s; run the demo again to reuse them,\n"
        "or delete the folder yourself.\n",
        dir.c_str());
  }
};

}  // namespace

int run_demo(const options& opts) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::error_code ec;
  fs::path dir = fs::absolute(opts.dir, ec);
  if (ec) dir = opts.dir;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    std::fprintf(stderr, "walrus-kv: cannot create the demo folder %s: %s\n", dir.c_str(),
                 ec ? ec.message().c_str() : "not a folder");
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  demo d;
  d.dir = dir;
  d.program = self_executable();
  d.tag = std::to_string(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  try {
    d.run();
    return 0;
  } catch (const demo_failed& e) {
    std::fprintf(stderr, "walrus-kv demo: FAILED: %s\n", e.what());
    // node_process destructors kill whatever still runs.
    for (auto& c : children) c = 0;
    return 1;
  }
}

}  // namespace walrus::kv::server
