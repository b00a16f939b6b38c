// walrus-kv's store under the `redis-benchmark -t set,get -P 16 -r 100000
// -d 100` pattern: keys "key:" + 12 random digits among 100 000, 100-byte
// values, one SET per transaction (what the primary's writer and the
// replica's applier do per command). Run in Release:
//   cmake -S . -B build-bench -G Ninja -DWALRUS_BENCH=ON -DCMAKE_BUILD_TYPE=Release
//   ninja -C build-bench walrus_bench_kv_store && build-bench/bench/walrus_bench_kv_store
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "apps/kv/ops.hpp"
#include "apps/kv/store.hpp"

using namespace walrus;
using namespace walrus::kv;

namespace {

constexpr size_t key_space = 100'000;
constexpr size_t value_bytes = 100;
constexpr size_t op_pool = 1 << 16;  // pre-encoded ops, cycled through

std::string key_of(size_t n) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "key:%012zu", n);
  return buffer;
}

// The random key order every benchmark follows (fixed seed).
std::vector<size_t> key_order(size_t n) {
  std::mt19937_64 rng{42};
  std::vector<size_t> out(n);
  for (auto& k : out) k = rng() % key_space;
  return out;
}

// One encoded Set op per entry, keys in random order.
std::vector<std::string> encoded_sets(size_t n) {
  std::string value(value_bytes, 'x');
  std::vector<std::string> out;
  out.reserve(n);
  for (auto k : key_order(n)) {
    out.emplace_back();
    encode_set(out.back(), key_of(k), value, 0);
  }
  return out;
}

void apply_one(store& db, std::string_view entry) {
  transaction tx;
  tx.first_sequence = db.applied_sequence() + 1;
  tx.entries.assign(1, entry);
  auto st = db.apply(tx);
  assert(st.ok());
  benchmark::DoNotOptimize(st);
}

// Every key of the key space present: each SET overwrites (the steady state
// of a long redis-benchmark run).
std::unique_ptr<store> filled_store() {
  auto db = std::make_unique<store>();
  std::string value(value_bytes, 'x');
  std::string entry;
  for (size_t k = 0; k < key_space; ++k) {
    entry.clear();
    encode_set(entry, key_of(k), value, 0);
    apply_one(*db, entry);
  }
  return db;
}

void BM_apply_set_overwrite(benchmark::State& state) {
  auto db = filled_store();
  auto entries = encoded_sets(op_pool);
  transaction tx;
  tx.entries.resize(1);
  size_t i = 0;
  for (auto _ : state) {
    tx.first_sequence = db->applied_sequence() + 1;
    tx.entries[0] = entries[i++ & (op_pool - 1)];
    auto st = db->apply(tx);
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_apply_set_overwrite);

// An empty store taking 100 000 distinct keys (growth included).
void BM_apply_set_insert(benchmark::State& state) {
  std::string value(value_bytes, 'x');
  std::vector<std::string> entries;
  std::vector<size_t> distinct(key_space);
  for (size_t k = 0; k < key_space; ++k) distinct[k] = k;
  std::shuffle(distinct.begin(), distinct.end(), std::mt19937_64{7});
  for (auto k : distinct) {
    entries.emplace_back();
    encode_set(entries.back(), key_of(k), value, 0);
  }
  transaction tx;
  tx.entries.resize(1);
  for (auto _ : state) {
    auto db = std::make_unique<store>();
    for (auto& e : entries) {
      tx.first_sequence = db->applied_sequence() + 1;
      tx.entries[0] = e;
      auto st = db->apply(tx);
      benchmark::DoNotOptimize(st);
    }
    state.PauseTiming();
    db.reset();  // freeing is not what this measures
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * key_space);
}
BENCHMARK(BM_apply_set_insert)->Unit(benchmark::kMillisecond);

// GET: read() of a present key, copying nothing (the reply append is the
// caller's cost).
void BM_read_hit(benchmark::State& state) {
  auto db = filled_store();
  std::vector<std::string> keys;
  keys.reserve(op_pool);
  for (auto k : key_order(op_pool)) keys.push_back(key_of(k));
  size_t i = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    bool found =
        db->read(keys[i++ & (op_pool - 1)], 1, [&](const record& r) { bytes += r.value.size(); });
    benchmark::DoNotOptimize(found);
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_read_hit);

void BM_read_miss(benchmark::State& state) {
  auto db = filled_store();
  std::vector<std::string> keys;
  keys.reserve(op_pool);
  for (auto k : key_order(op_pool)) keys.push_back(key_of(k + key_space));
  size_t i = 0;
  for (auto _ : state) {
    bool found = db->read(keys[i++ & (op_pool - 1)], 1, [](const record&) {});
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_read_miss);

}  // namespace

BENCHMARK_MAIN();
