#include "apps/walrus-bench/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "actors/connector.hpp"
#include "actors/listener.hpp"
#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/registry.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"

namespace walrus::bench {
namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct node_config : caf::actor_system_config {
  node_config() {
    configure_bench_system(*this);
    load<caf::io::middleman>();
  }
};

class null_machine : public state_machine {
 public:
  status apply(const transaction& tx) override {
    applied_.store(tx.last_sequence(), std::memory_order_release);
    return status{};
  }
  uint64_t applied_sequence() const override { return applied_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> applied_{0};
};

uint64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

std::vector<std::string> payloads(size_t entry_bytes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < 1024; ++i) {
    std::string p = "SET user:" + std::to_string(100000 + i * 7919 % 900000) +
                    " {\"n\":" + std::to_string(i) + "}";
    while (p.size() < entry_bytes) p += " pad" + std::to_string(p.size() % 97);
    p.resize(entry_bytes);
    out.push_back(std::move(p));
  }
  return out;
}

// A primary with a listener, and replica child processes.
struct net_primary {
  node_config cfg;
  caf::actor_system sys{cfg};
  fs::path dir;
  std::shared_ptr<wal::log> log;
  primary_actor primary;
  caf::actor listener;
  uint16_t port = 0;
  std::vector<pid_t> children;

  net_primary(const pipeline_options& opt, const std::string& self_path, size_t replicas)
      : dir(fs::path(opt.dir) / ("net-" + std::to_string(::getpid()))) {
    log = open_bench_log((dir / "primary").string());
    primary_config pc;
    pc.session.codec = opt.codec;
    primary = spawn_primary(sys, pc, log);
    listener_config lc;
    lc.handshake.cluster_id = "bench";
    lc.handshake.primary_id = "primary";
    lc.handshake.codec_preference = {opt.codec.id};
    auto listening = listen(sys, lc, primary, log);
    if (!listening) {
      std::fprintf(stderr, "walrus-bench: %s\n", listening.error().to_string().c_str());
      std::exit(2);
    }
    listener = listening->first;
    port = listening->second;
    for (size_t i = 0; i < replicas; ++i) start_replica(opt, self_path);
    wait_until([&](const primary_status& st) { return st.replicas.size() == replicas; });
  }

  // One more replica child process (`replica-node`), dialling this primary.
  void start_replica(const pipeline_options& opt, const std::string& self_path) {
    auto id = "replica-" + std::to_string(children.size() + 1);
    auto rdir = (dir / id).string();
    auto port_text = std::to_string(port);
    auto codec_text = std::string(codec::to_string(opt.codec.id));
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(self_path.c_str(), self_path.c_str(), "replica-node", port_text.c_str(), rdir.c_str(),
              id.c_str(), codec_text.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    children.push_back(pid);
  }

  primary_status state() {
    caf::scoped_actor self{sys};
    primary_status out;
    self->request(primary, std::chrono::seconds(5), status_atom_v)
        .receive([&](primary_status& st) { out = std::move(st); }, [&](caf::error&) {});
    return out;
  }

  // Polls the primary's status until `pred` holds; `each_second`, when
  // given, sees the status about once a second (progress reports).
  template <class Pred>
  void wait_until(Pred pred,
                  const std::function<void(const primary_status&)>& each_second = nullptr) {
    auto deadline = clock_type::now() + std::chrono::minutes(5);
    auto next_report = clock_type::now() + std::chrono::seconds(1);
    for (auto st = state(); !pred(st); st = state()) {
      auto now = clock_type::now();
      if (now > deadline) {
        std::fprintf(stderr, "walrus-bench: replicas did not get there in 5 minutes\n");
        std::exit(2);
      }
      if (each_second && now >= next_report) {
        each_second(st);
        next_report += std::chrono::seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  uint64_t slowest_applied() {
    auto st = state();
    uint64_t min = UINT64_MAX;
    for (auto& r : st.replicas) min = std::min(min, r.applied_sequence);
    return st.replicas.empty() ? 0 : min;
  }

  ~net_primary() {
    for (auto pid : children) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    caf::anon_send(primary, stop_atom_v);
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  }
};

uint64_t write_for(wal::log& log, const std::vector<std::string>& ps, size_t tx_entries,
                   uint64_t total_entries, double seconds) {
  std::vector<std::string_view> tx;
  uint64_t written = 0;
  auto start = clock_type::now();
  while (written < total_entries &&
         std::chrono::duration<double>(clock_type::now() - start).count() < seconds) {
    tx.clear();
    for (size_t i = 0; i < tx_entries; ++i) tx.push_back(ps[(written + i) % ps.size()]);
    if (!log.append(tx)) std::exit(2);
    written += tx.size();
  }
  return written;
}

}  // namespace

throughput_result run_network(const pipeline_options& opt, const std::string& self_path) {
  throughput_result out;
  fs::path dir;
  {
    net_primary p{opt, self_path, opt.replicas};
    dir = p.dir;
    auto ps = payloads(opt.entry_bytes);
    auto total = std::max<uint64_t>(opt.bytes / opt.entry_bytes, opt.tx_entries);
    auto cpu = [&] {
      double sum = process_cpu_seconds();
      for (auto pid : p.children) sum += process_cpu_seconds(pid);
      return sum;
    };
    auto cpu_start = cpu();
    auto start = clock_type::now();
    auto written = write_for(*p.log, ps, opt.tx_entries, total, 1e9);
    while (p.slowest_applied() < p.log->last_sequence())
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    out.cpu_seconds = cpu() - cpu_start;
    out.entries = written;
    out.entries_per_second = static_cast<double>(written) / out.seconds;
    out.megabytes_per_second = static_cast<double>(written * opt.entry_bytes) / out.seconds / 1e6;
  }
  fs::remove_all(dir);
  return out;
}

stall_result run_stall(const pipeline_options& opt, const std::string& self_path, double seconds) {
  stall_result out;
  fs::path dir;
  {
    net_primary p{opt, self_path, 1};
    dir = p.dir;
    auto ps = payloads(opt.entry_bytes);
    write_for(*p.log, ps, opt.tx_entries, 100000, 1e9);  // warm up
    p.wait_until([&](const primary_status& st) {
      return !st.replicas.empty() && st.replicas[0].applied_sequence == p.log->last_sequence();
    });
    out.rss_before = rss_bytes();
    ::kill(p.children[0], SIGSTOP);
    std::atomic<bool> done{false};
    std::thread sampler{[&] {
      while (!done) {
        out.rss_peak = std::max(out.rss_peak, rss_bytes());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }};
    out.entries_written = write_for(*p.log, ps, opt.tx_entries, UINT64_MAX, seconds);
    done = true;
    sampler.join();
    ::kill(p.children[0], SIGCONT);
    auto start = clock_type::now();
    p.wait_until([&](const primary_status& st) {
      return !st.replicas.empty() && st.replicas[0].applied_sequence == p.log->last_sequence();
    });
    out.catch_up_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  }
  fs::remove_all(dir);
  return out;
}

catch_up_result run_catch_up(const pipeline_options& opt, const std::string& self_path,
                             uint64_t entries) {
  catch_up_result out;
  fs::path dir;
  {
    net_primary p{opt, self_path, 0};
    dir = p.dir;
    // With no replica known, retention would drop every sealed segment: keep
    // the whole log, as a host does for what its recovery needs.
    p.log->protect_from(1);
    auto ps = payloads(opt.entry_bytes);
    auto start = clock_type::now();
    constexpr uint64_t report_every = 1000000;
    while (out.entries < entries) {
      auto chunk = std::min(report_every, entries - out.entries);
      out.entries += write_for(*p.log, ps, opt.tx_entries, chunk, 1e9);
      std::fprintf(stderr, "catch-up: %llu of %llu entries appended on the primary\n",
                   static_cast<unsigned long long>(out.entries),
                   static_cast<unsigned long long>(entries));
    }
    out.write_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    auto target = p.log->last_sequence();
    start = clock_type::now();
    p.start_replica(opt, self_path);
    p.wait_until([](const primary_status& st) { return !st.replicas.empty(); });
    out.attach_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    uint64_t last_applied = 0;
    p.wait_until(
        [&](const primary_status& st) { return st.replicas[0].applied_sequence >= target; },
        [&](const primary_status& st) {
          auto applied = st.replicas[0].applied_sequence;
          std::fprintf(stderr, "catch-up: replica applied %llu of %llu (%.0f%%), %llu entries/s\n",
                       static_cast<unsigned long long>(applied),
                       static_cast<unsigned long long>(target), 100.0 * applied / target,
                       static_cast<unsigned long long>(applied - last_applied));
          last_applied = applied;
        });
    out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    out.entries_per_second = static_cast<double>(target) / out.seconds;
    out.megabytes_per_second = static_cast<double>(target * opt.entry_bytes) / out.seconds / 1e6;
  }
  fs::remove_all(dir);
  return out;
}

latency_result run_network_latency(const pipeline_options& opt, const std::string& self_path,
                                   uint64_t rate, double seconds) {
  latency_result out;
  fs::path dir;
  std::vector<double> us;
  {
    net_primary p{opt, self_path, 1};
    dir = p.dir;
    auto ps = payloads(opt.entry_bytes);
    auto count = static_cast<uint64_t>(static_cast<double>(rate) * seconds);
    auto samples = std::make_shared<std::vector<double>>();
    samples->reserve(count);
    // Asks the primary, per entry, to answer once the replica applied it.
    auto prober = p.sys.spawn([samples, primary = p.primary](caf::event_based_actor* self) {
      return caf::behavior{[=](uint64_t seq, int64_t appended_ns) {
        self->request(primary, std::chrono::seconds(30), wait_atom_v,
                      wait_request{seq, 1, ack_level::applied, std::chrono::seconds(20)})
            .then([=](uint32_t) {
              auto now = clock_type::now().time_since_epoch().count();
              samples->push_back(static_cast<double>(now - appended_ns) / 1000.0);
            });
      }};
    });
    auto interval = std::chrono::duration<double>(1.0 / static_cast<double>(rate));
    auto start = clock_type::now();
    for (uint64_t i = 0; i < count;) {
      auto due = start + std::chrono::duration_cast<clock_type::duration>(interval * i);
      if (clock_type::now() < due) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        continue;
      }
      auto range = p.log->append(ps[i % ps.size()]);
      if (!range) std::exit(2);
      caf::anon_send(prober, range->last,
                     static_cast<int64_t>(clock_type::now().time_since_epoch().count()));
      ++i;
    }
    p.wait_until([&](const primary_status& st) {
      return !st.replicas.empty() && st.replicas[0].applied_sequence == p.log->last_sequence();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the last answers
    caf::anon_send_exit(prober, caf::exit_reason::user_shutdown);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    us = *samples;
  }
  fs::remove_all(dir);
  std::sort(us.begin(), us.end());
  if (us.empty()) return out;
  out.samples = us.size();
  out.p50_us = us[us.size() / 2];
  out.p99_us = us[us.size() * 99 / 100];
  out.max_us = us.back();
  return out;
}

namespace {

// A connected pair of loopback TCP sockets: {sending end, receiving end}.
std::pair<int, int> loopback_pair() {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(listener, 1);
  int sender = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(sender, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int receiver = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  return {sender, receiver};
}

void send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    auto n = ::send(fd, data, size, 0);
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n <= 0) std::exit(2);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

double loopback_bandwidth(uint64_t bytes) {
  auto [sender, receiver] = loopback_pair();
  std::thread reader{[&, fd = receiver] {
    std::vector<char> buf(256 * 1024);
    uint64_t got = 0;
    while (got < bytes) {
      auto n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got += static_cast<uint64_t>(n);
    }
  }};
  std::vector<char> buf(256 * 1024, 'x');
  auto start = clock_type::now();
  uint64_t sent = 0;
  while (sent < bytes) {
    auto n = ::send(sender, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    sent += static_cast<uint64_t>(n);
  }
  ::shutdown(sender, SHUT_WR);
  reader.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(sender);
  ::close(receiver);
  return static_cast<double>(sent) / seconds / 1e6;
}

double minimal_pipeline_bandwidth(const pipeline_options& opt) {
  auto dir = fs::path(opt.dir) / ("minimal-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto primary_file = (dir / "primary.wal").string();
  auto replica_file = (dir / "replica.wal").string();
  auto ps = payloads(opt.entry_bytes);
  auto transactions = std::max<uint64_t>(opt.bytes / opt.entry_bytes / opt.tx_entries, 1);
  auto total = transactions * opt.tx_entries;
  auto [sender, receiver] = loopback_pair();
  int one = 1;
  ::setsockopt(sender, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::atomic<uint64_t> verified{0};
  auto start = clock_type::now();
  std::thread replica{[&, fd = receiver] {
    int out = ::open(replica_file.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    std::vector<char> buf(512 * 1024);
    size_t held = 0;  // bytes of a record cut by the last recv, at the front
    uint64_t records = 0;
    while (records < total) {
      auto n = ::recv(fd, buf.data() + held, buf.size() - held, 0);
      if (n <= 0) break;
      held += static_cast<size_t>(n);
      size_t at = 0;
      wal::record_view record;
      size_t record_bytes = 0;
      while (wal::decode_record(buf.data() + at, held - at, record, record_bytes) ==
             wal::decode_outcome::ok) {
        at += record_bytes;
        ++records;
      }
      write_all(out, buf.data(), at);
      std::memmove(buf.data(), buf.data() + at, held - at);
      held -= at;
    }
    ::close(out);
    verified = records;
  }};
  int out = ::open(primary_file.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  std::vector<char> tx(opt.tx_entries * wal::encoded_record_bytes(opt.entry_bytes));
  for (uint64_t written = 0; written < total;) {
    char* at = tx.data();
    for (size_t i = 0; i < opt.tx_entries; ++i, ++written)
      at = wal::encode_record(at, written + 1,
                              wal::make_flags(wal::record_type::data, i + 1 == opt.tx_entries),
                              ps[written % ps.size()]);
    write_all(out, tx.data(), tx.size());
    send_all(sender, tx.data(), tx.size());
  }
  ::close(out);
  replica.join();
  auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(sender);
  ::close(receiver);
  fs::remove_all(dir);
  if (verified != total) std::exit(2);
  return static_cast<double>(total * opt.entry_bytes) / seconds / 1e6;
}

int replica_node(int argc, char** argv) {
  if (argc < 4) return 2;
  node_config cfg;
  caf::actor_system sys{cfg};
  connector_config cc;
  cc.port = static_cast<uint16_t>(std::stoi(argv[0]));
  cc.handshake.cluster_id = "bench";
  cc.handshake.replica_id = argv[2];
  auto codec = codec::parse_codec_config(argv[3]);
  if (codec) cc.handshake.codecs = {codec->id};
  replica_config rc;
  rc.replica_id = argv[2];
  rc.transport = network_transport(cc);
  auto replica = spawn_replica(sys, rc, std::make_shared<null_machine>(),
                               open_bench_log(argv[1], 256ull << 20));
  // Runs until the parent kills it.
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace walrus::bench
