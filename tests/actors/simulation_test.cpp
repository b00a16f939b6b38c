// The deterministic simulation (tests/support/sim.hpp): 200 fixed seeds by
// default; through the environment, a long run, a replay or a minimisation:
//   WALRUS_SIM_SEEDS=10000 [WALRUS_SIM_FIRST_SEED=1]   many seeds
//   WALRUS_SIM_SEED=N                                 one seed, its trace printed
//   WALRUS_SIM_FAULTS=kill_tailer,stall               only these fault kinds
//   WALRUS_SIM_SKIP=3,7                               leave faults #3 and #7 out
//   WALRUS_SIM_STRICT=1                               known issues fail a seed too
//   WALRUS_SIM_DEBUG=1                                every batch into the trace
// A long run needs the runner's watchdog raised: -r <seconds>.
#define CAF_SUITE simulation
#include "tests/support/sim.hpp"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

using namespace walrus;
using namespace walrus::testing;

namespace {

bool reports(const sim_outcome& o, const std::string& text) {
  return std::any_of(o.violations.begin(), o.violations.end(),
                     [&](const std::string& v) { return v.find(text) != std::string::npos; });
}

void print(const sim_outcome& o) {
  for (auto& v : o.violations) std::cout << "seed " << o.seed << ": " << v << "\n";
  for (auto& k : o.known) std::cout << "seed " << o.seed << ": known issue " << k << "\n";
  std::cout << "seed " << o.seed << " trace (" << o.steps << " steps, " << o.writes << " writes, "
            << o.faults << " faults, fingerprint " << o.fingerprint << "):\n";
  for (auto& line : o.trace) std::cout << "  " << line << "\n";
}

}  // namespace

CAF_TEST(every seed holds the invariants) {
  auto opts = sim_options::from_environment();
  uint64_t failed = 0;
  uint64_t steps = 0, writes = 0, faults = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> known;  // issue -> (seeds, first seed)
  for (uint64_t seed = opts.first_seed; seed < opts.first_seed + opts.seeds; ++seed) {
    auto outcome = run_simulation(seed, opts);
    steps += outcome.steps;
    writes += outcome.writes;
    faults += outcome.faults;
    std::set<std::string> ids;
    for (auto& k : outcome.known) ids.insert(k.substr(0, k.find(':')));
    for (auto& id : ids) {
      auto& [seeds, first] = known[id];
      if (seeds++ == 0) first = seed;
    }
    bool bad = outcome.failed(opts.strict);
    if (bad) ++failed;
    if (bad || opts.replay) print(outcome);
  }
  std::cout << "seeds run: " << opts.seeds << ", violations: " << failed << std::endl;
  std::cout << "(" << steps << " messages, " << writes << " writes, " << faults << " faults)"
            << std::endl;
  for (auto& [id, count] : known)
    std::cout << "known issue " << id << ": " << count.first << " seeds (the first: seed "
              << count.second << ")" << std::endl;
  CAF_CHECK_EQUAL(failed, 0u);
}

CAF_TEST(a seed replays the same run) {
  sim_options opts;
  for (uint64_t seed : {3u, 11u}) {
    auto first = run_simulation(seed, opts);
    auto second = run_simulation(seed, opts);
    CAF_CHECK_EQUAL(first.fingerprint, second.fingerprint);
    CAF_CHECK_EQUAL(first.trace, second.trace);
    CAF_CHECK_EQUAL(first.steps, second.steps);
  }
}

CAF_TEST(the checks catch a replica that applied what the primary never wrote) {
  sim_options opts;
  opts.sabotage = 1;
  auto outcome = run_simulation(5, opts);
  CAF_CHECK(reports(outcome, "applied sequence"));
  CAF_CHECK(reports(outcome, "never written"));
}

CAF_TEST(the checks catch a confirmed write that too few replicas hold) {
  sim_options opts;
  opts.sabotage = 2;
  auto outcome = run_simulation(5, opts);
  CAF_CHECK(reports(outcome, "was confirmed durable on"));
}
