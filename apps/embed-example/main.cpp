// A complete host program: one primary and two replicas in the host's own
// actor system. The host writes on the primary's WAL, waits until both
// replicas applied the writes, and reads them back from each replica's state.
// docs/embedding.md walks through it.
//
// Usage: walrus-embed-example [DIR]   (default: a fresh folder under /tmp)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include <unistd.h>

#include "actors/primary.hpp"
#include "actors/replica.hpp"
#include "base/allocator.hpp"
#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/scoped_actor.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"
#include "wal/log.hpp"

namespace {

// The host's state: "key=value" entries applied to a map.
class kv_map : public walrus::state_machine {
 public:
  walrus::status apply(const walrus::transaction& tx) override {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto entry : tx.entries) {
      auto eq = entry.find('=');
      if (eq == std::string_view::npos)
        return walrus::status{walrus::errc::invalid_argument,
                              "not key=value: " + std::string(entry)};
      map_[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    }
    applied_ = tx.last_sequence();
    return walrus::status{};
  }
  uint64_t applied_sequence() const override {
    std::lock_guard<std::mutex> guard{mutex_};
    return applied_;
  }
  std::string get(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mutex_};
    auto i = map_.find(key);
    return i == map_.end() ? "(none)" : i->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> map_;
  uint64_t applied_ = 0;
};

std::shared_ptr<walrus::wal::log> open_log(const std::filesystem::path& dir) {
  walrus::wal::options opts;
  opts.dir = dir.string();
  opts.sync = walrus::wal::sync_policy::group();
  auto log = walrus::wal::log::open(opts);
  if (!log) {
    std::fprintf(stderr, "cannot open %s: %s\n", opts.dir.c_str(), log.error().to_string().c_str());
    std::exit(1);
  }
  return std::shared_ptr<walrus::wal::log>(std::move(*log));
}

}  // namespace

namespace fs = std::filesystem;

int run(const fs::path& dir) {
  // 1. The host's actor system, with walrus's message types registered and
  //    the recommended scheduler (one thread per core, sharing).
  caf::actor_system_config cfg;
  walrus::add_message_types(cfg);
  walrus::use_recommended_scheduler(cfg);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  // 2. A primary on its WAL.
  auto primary_log = open_log(dir / "primary");
  auto primary = walrus::spawn_primary(sys, walrus::primary_config{}, primary_log);

  // 3. Two replicas, each with its own WAL and state, linked in-process.
  std::vector<std::shared_ptr<kv_map>> states;
  std::vector<walrus::replica_actor> replicas;
  for (std::string id : {"replica-1", "replica-2"}) {
    walrus::replica_config rc;
    rc.replica_id = id;
    rc.transport = walrus::local_transport(walrus::local_link_config{id, primary, nullptr});
    states.push_back(std::make_shared<kv_map>());
    replicas.push_back(walrus::spawn_replica(sys, rc, states.back(), open_log(dir / id)));
  }

  // 4. Writes: each append is one transaction.
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    auto k = "key" + std::to_string(i % 100);
    auto v = "value" + std::to_string(i);
    auto range = primary_log->append(k + "=" + v);
    if (!range) {
      std::fprintf(stderr, "append failed: %s\n", range.error().to_string().c_str());
      return 1;
    }
    last = range->last;
  }

  // 5. Wait until both replicas applied the last write (like Redis WAIT).
  int exit_code = 0;
  self->request(primary, std::chrono::seconds(10), walrus::wait_atom_v,
                walrus::wait_request{last, 2, walrus::ack_level::applied, std::chrono::seconds(5)})
      .receive([&](uint32_t n) { std::printf("%u replicas applied sequence %lu\n", n, last); },
               [&](caf::error& err) {
                 std::printf("wait failed: %s\n", walrus::render(err).c_str());
                 exit_code = 1;
               });

  // 6. Read from the replicas, and show the primary's view of them.
  for (size_t i = 0; i < states.size(); ++i)
    std::printf("replica-%zu: key7 = %s\n", i + 1, states[i]->get("key7").c_str());
  self->request(primary, std::chrono::seconds(5), walrus::status_atom_v)
      .receive(
          [&](const walrus::primary_status& st) {
            for (auto& r : st.replicas)
              std::printf("%s: %s applied=%lu lag=%lu entries\n", r.replica_id.c_str(),
                          r.link.c_str(), r.applied_sequence, r.lag_entries);
          },
          [&](caf::error& err) { std::printf("status: %s\n", walrus::render(err).c_str()); });

  // 7. Stop everything: the actor system's destructor waits for all actors.
  for (auto& r : replicas) self->send(r, walrus::stop_atom_v);
  self->send(primary, walrus::stop_atom_v);
  return exit_code;
}

int main(int argc, char** argv) {
  walrus::tune_allocator();  // batch buffers stay in the heap (base/allocator.hpp)
  bool keep = argc > 1;
  fs::path dir = keep ? fs::path(argv[1])
                      : fs::temp_directory_path() / ("walrus-embed-" + std::to_string(::getpid()));
  int exit_code = run(dir);
  if (!keep) fs::remove_all(dir);
  return exit_code;
}
