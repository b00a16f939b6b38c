#define CAF_SUITE kv_table
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "apps/kv/table.hpp"

using namespace walrus::kv;

namespace {

// Keys "h<n>:<anything>" hash to n: the tests place keys in chosen slots.
uint64_t forced_hash(std::string_view key) noexcept {
  uint64_t n = 0;
  for (size_t i = 1; i < key.size() && key[i] != ':'; ++i) n = n * 10 + (key[i] - '0');
  return n;
}

// 64 distinct hashes, each the start of a probe in the last 64 slots of any
// table of at least 64 slots: long clusters that wrap around the end, and
// equal hashes for different keys.
uint64_t colliding_hash(std::string_view key) noexcept {
  return ~(hash_key(key) & 63);
}

// The linear-probing invariant: every slot between a node's home slot and
// its own slot is occupied (so a probe for it cannot stop early), and the
// table holds size() nodes, each under its key's hash.
void check_invariants(const table& t) {
  size_t count = t.slot_count();
  CAF_REQUIRE(count == 0 || (count & (count - 1)) == 0);
  size_t nodes = 0;
  for (size_t i = 0; i < count; ++i) {
    const table::node* n = t.node_at(i);
    if (n == nullptr) continue;
    ++nodes;
    CAF_REQUIRE_EQUAL(t.hash_at(i), t.hash(n->key()));
    for (size_t j = t.hash_at(i) & (count - 1); j != i; j = (j + 1) & (count - 1))
      CAF_REQUIRE(t.node_at(j) != nullptr);
  }
  CAF_REQUIRE_EQUAL(nodes, t.size());
  CAF_REQUIRE(nodes * 4 <= count * 3);
}

std::string value_of(const table& t, std::string_view key) {
  const table::node* n = t.find(key);
  return n == nullptr ? "<absent>" : std::string{n->value()};
}

size_t slot_of(const table& t, std::string_view key) {
  for (size_t i = 0; i < t.slot_count(); ++i)
    if (t.node_at(i) != nullptr && t.node_at(i)->key() == key) return i;
  return SIZE_MAX;
}

}  // namespace

CAF_TEST(the hash spreads short keys over top and low bits) {
  // Keys as redis-benchmark makes them: the store takes the shard from the
  // top 5 bits and the slot from the low bits.
  std::vector<size_t> top(32);
  std::vector<size_t> low(1024);
  std::set<uint64_t> distinct;
  constexpr size_t keys = 100'000;
  for (size_t i = 0; i < keys; ++i) {
    std::string key = "key:" + std::string(12 - std::to_string(i).size(), '0') + std::to_string(i);
    uint64_t h = hash_key(key);
    ++top[h >> 59];
    ++low[h & 1023];
    distinct.insert(h);
  }
  CAF_CHECK_EQUAL(distinct.size(), keys);
  for (auto n : top) CAF_CHECK(n > keys / 32 * 9 / 10 && n < keys / 32 * 11 / 10);
  for (auto n : low) CAF_CHECK(n > keys / 1024 / 2 && n < keys / 1024 * 2);
  CAF_CHECK_NOT_EQUAL(hash_key(""), hash_key(std::string_view{"\0", 1}));
  CAF_CHECK_NOT_EQUAL(hash_key("abc"), hash_key("abd"));
  CAF_CHECK_NOT_EQUAL(hash_key(std::string(40, 'x')), hash_key(std::string(41, 'x')));
}

CAF_TEST(insert find and overwrite reuse the node when the value fits) {
  table t;
  CAF_CHECK(t.find("a") == nullptr);
  CAF_CHECK(!t.erase("a"));
  CAF_CHECK(t.upsert("key:000000012345", std::string(100, 'v'), 7));
  CAF_CHECK(t.upsert("", "empty key", 0));
  CAF_CHECK(t.upsert(std::string_view{"b\0c", 3}, "", 0));
  CAF_CHECK_EQUAL(t.size(), 3u);
  CAF_CHECK_EQUAL(value_of(t, ""), "empty key");
  CAF_CHECK_EQUAL(value_of(t, std::string_view{"b\0c", 3}), "");
  CAF_CHECK_EQUAL(value_of(t, "b"), "<absent>");
  const table::node* n = t.find("key:000000012345");
  CAF_REQUIRE(n != nullptr);
  CAF_CHECK_EQUAL(n->expire_at_ms(), 7);
  CAF_CHECK(n->value_capacity() >= 100);
  // Same size, smaller, and up to the capacity: the same node.
  CAF_CHECK(!t.upsert("key:000000012345", std::string(100, 'w'), 0));
  CAF_CHECK(t.find("key:000000012345") == n);
  CAF_CHECK_EQUAL(n->value(), std::string(100, 'w'));
  CAF_CHECK_EQUAL(n->expire_at_ms(), 0);
  CAF_CHECK(!t.upsert("key:000000012345", "short", 0));
  CAF_CHECK(t.find("key:000000012345") == n);
  CAF_CHECK_EQUAL(n->value(), "short");
  CAF_CHECK(!t.upsert("key:000000012345", std::string(n->value_capacity(), 'c'), 0));
  CAF_CHECK(t.find("key:000000012345") == n);
  // Larger: a new node with the new value, the key kept.
  CAF_CHECK(!t.upsert("key:000000012345", std::string(1000, 'L'), 9));
  n = t.find("key:000000012345");
  CAF_REQUIRE(n != nullptr);
  CAF_CHECK_EQUAL(n->value(), std::string(1000, 'L'));
  CAF_CHECK_EQUAL(n->key(), "key:000000012345");
  CAF_CHECK_EQUAL(n->expire_at_ms(), 9);
  // A value under a quarter of a large capacity lets the capacity go.
  CAF_CHECK(!t.upsert("key:000000012345", "tiny", 0));
  CAF_CHECK(t.find("key:000000012345")->value_capacity() < 1000);
  CAF_CHECK_EQUAL(value_of(t, "key:000000012345"), "tiny");
  // A value that views the node itself.
  CAF_CHECK(!t.upsert("key:000000012345", t.find("key:000000012345")->value().substr(1), 0));
  CAF_CHECK_EQUAL(value_of(t, "key:000000012345"), "iny");
  CAF_CHECK_EQUAL(t.size(), 3u);
  check_invariants(t);
}

CAF_TEST(reserve makes room so that inserts up to the count keep the slot array) {
  table t;
  t.reserve(1000);
  auto slots = t.slot_count();
  CAF_REQUIRE(slots >= 1000);
  for (int i = 0; i < 1000; ++i) CAF_CHECK(t.upsert("k" + std::to_string(i), "v", 0));
  CAF_CHECK_EQUAL(t.slot_count(), slots);
  t.reserve(10);  // never shrinks
  CAF_CHECK_EQUAL(t.slot_count(), slots);
  CAF_CHECK_EQUAL(t.size(), 1000u);
}

CAF_TEST(a deleted marker is a node until overwritten or erased) {
  table t;
  uint64_t h = t.hash("k");
  CAF_CHECK(t.mark_deleted("k", h));
  CAF_REQUIRE(t.find("k") != nullptr);
  CAF_CHECK(t.find("k")->deleted());
  CAF_CHECK(!t.upsert("k", h, "v", 3));
  CAF_CHECK(!t.find("k")->deleted());
  CAF_CHECK(!t.mark_deleted("k", h));
  CAF_CHECK(t.find("k")->deleted());
  CAF_CHECK_EQUAL(t.find("k")->value(), "");
  CAF_CHECK(t.erase("k", h));
  CAF_CHECK(t.empty());
}

CAF_TEST(erase shifts back the entries of a cluster across the wrap around) {
  table t{forced_hash};
  // Homes 14, 14, 15, 15, 14, 0 in 16 slots: the cluster runs 14 15 0 1 2 3.
  for (auto key : {"h14:a", "h14:b", "h15:c", "h15:d", "h14:e", "h0:f", "h5:g"})
    CAF_REQUIRE(t.upsert(key, key, 0));
  CAF_REQUIRE_EQUAL(t.slot_count(), 16u);
  check_invariants(t);
  CAF_CHECK_EQUAL(slot_of(t, "h14:a"), 14u);
  CAF_CHECK_EQUAL(slot_of(t, "h15:c"), 0u);
  CAF_CHECK_EQUAL(slot_of(t, "h0:f"), 3u);
  // Removing the cluster's head moves each entry back as far as its home allows.
  CAF_CHECK(t.erase("h14:a"));
  check_invariants(t);
  CAF_CHECK_EQUAL(slot_of(t, "h14:b"), 14u);
  CAF_CHECK_EQUAL(slot_of(t, "h15:c"), 15u);
  CAF_CHECK_EQUAL(slot_of(t, "h0:f"), 2u);
  CAF_CHECK_EQUAL(slot_of(t, "h5:g"), 5u);
  CAF_CHECK(t.erase("h15:c"));
  CAF_CHECK(t.erase("h14:e"));
  check_invariants(t);
  CAF_CHECK_EQUAL(slot_of(t, "h0:f"), 0u);
  CAF_CHECK(!t.erase("h14:a"));
  CAF_CHECK(!t.erase("h1:zz"));
  for (auto key : {"h14:b", "h15:d", "h0:f", "h5:g"}) CAF_CHECK_EQUAL(value_of(t, key), key);
  CAF_CHECK_EQUAL(t.size(), 4u);
}

CAF_TEST(the table grows with many keys and iteration visits each once) {
  table t;
  constexpr int keys = 200'000;
  for (int i = 0; i < keys; ++i) CAF_REQUIRE(t.upsert("key:" + std::to_string(i), "v", i));
  CAF_CHECK_EQUAL(t.size(), static_cast<size_t>(keys));
  check_invariants(t);
  std::vector<int> seen(keys);
  t.for_each([&](const table::node& n, uint64_t hash) {
    CAF_REQUIRE_EQUAL(hash, hash_key(n.key()));
    ++seen[n.expire_at_ms()];
  });
  size_t by_slot = 0;
  for (size_t i = 0; i < t.slot_count(); ++i) by_slot += t.node_at(i) != nullptr;
  CAF_CHECK_EQUAL(by_slot, t.size());
  CAF_CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  for (int i = 0; i < keys; i += 2) CAF_REQUIRE(t.erase("key:" + std::to_string(i)));
  auto slots = t.slot_count();
  for (int i = 0; i < keys; ++i)
    CAF_REQUIRE_EQUAL(value_of(t, "key:" + std::to_string(i)), i % 2 == 0 ? "<absent>" : "v");
  CAF_CHECK_EQUAL(t.slot_count(), slots);  // no shrinking but by clear()
  check_invariants(t);
}

CAF_TEST(clear and swap) {
  table a;
  table b;
  for (int i = 0; i < 100; ++i) CAF_REQUIRE(a.upsert("a" + std::to_string(i), "x", 0));
  CAF_REQUIRE(b.upsert("b", "y", 0));
  a.swap(b);
  CAF_CHECK_EQUAL(a.size(), 1u);
  CAF_CHECK_EQUAL(b.size(), 100u);
  CAF_CHECK_EQUAL(value_of(a, "b"), "y");
  CAF_CHECK_EQUAL(value_of(b, "a7"), "x");
  b.clear();
  CAF_CHECK(b.empty());
  CAF_CHECK_EQUAL(b.slot_count(), 0u);
  CAF_CHECK(b.find("a7") == nullptr);
  CAF_CHECK(b.upsert("a7", "again", 0));
  table c{std::move(a)};
  CAF_CHECK_EQUAL(value_of(c, "b"), "y");
  CAF_CHECK(a.empty());
  a = std::move(c);
  CAF_CHECK_EQUAL(value_of(a, "b"), "y");
}

CAF_TEST(drain and adopt move nodes between tables without copying) {
  table from;
  table into;
  CAF_REQUIRE(from.upsert("new", "1", 0));
  CAF_REQUIRE(from.upsert("both", "from", 5));
  CAF_REQUIRE(into.upsert("both", "into", 0));
  CAF_REQUIRE(into.upsert("old", "2", 0));
  const table::node* moved = from.find("both");
  from.drain([&](uint64_t hash, table::node_ptr n) { into.adopt(hash, std::move(n)); });
  CAF_CHECK(from.empty());
  CAF_CHECK_EQUAL(from.slot_count(), 0u);
  CAF_CHECK_EQUAL(into.size(), 3u);
  CAF_CHECK(into.find("both") == moved);
  CAF_CHECK_EQUAL(value_of(into, "both"), "from");
  CAF_CHECK_EQUAL(into.find("both")->expire_at_ms(), 5);
  CAF_CHECK_EQUAL(value_of(into, "new"), "1");
  CAF_CHECK_EQUAL(value_of(into, "old"), "2");
  check_invariants(into);
}

namespace {

// Random ops on a table and on std::unordered_map side by side; a deleted
// marker is the model's expiry -1.
void differential(table::hash_function hash, size_t ops, size_t key_space, uint32_t seed) {
  using model_map = std::unordered_map<std::string, std::pair<std::string, int64_t>>;
  std::mt19937_64 rng{seed};
  table t{hash};
  model_map model;
  auto random_key = [&] {
    auto n = rng() % key_space;
    return std::string(n % 37, 'k') + std::to_string(n);
  };
  auto random_value = [&] {
    switch (rng() % 8) {
      case 0: return std::string{};
      case 1: return std::string(rng() % 2000, 'L');
      default: return std::string(80 + rng() % 40, static_cast<char>('a' + rng() % 26));
    }
  };
  auto compare_all = [&] {
    check_invariants(t);
    CAF_REQUIRE_EQUAL(t.size(), model.size());
    t.for_each([&](const table::node& n, uint64_t) {
      auto it = model.find(std::string{n.key()});
      CAF_REQUIRE(it != model.end());
      CAF_REQUIRE_EQUAL(n.value(), it->second.first);
      CAF_REQUIRE_EQUAL(n.deleted() ? -1 : n.expire_at_ms(), it->second.second);
    });
  };
  for (size_t i = 0; i < ops; ++i) {
    auto key = random_key();
    uint64_t h = t.hash(key);
    auto dice = rng() % 1000;
    if (dice < 450) {
      auto value = random_value();
      auto expire = static_cast<int64_t>(rng() % 3);
      bool inserted = model.find(key) == model.end();
      model[key] = {value, expire};
      CAF_REQUIRE_EQUAL(t.upsert(key, h, value, expire), inserted);
    } else if (dice < 700) {
      CAF_REQUIRE_EQUAL(t.erase(key, h), model.erase(key) == 1);
    } else if (dice < 980) {
      const table::node* n = t.find(key, h);
      auto it = model.find(key);
      CAF_REQUIRE_EQUAL(n != nullptr, it != model.end());
      if (n != nullptr) {
        CAF_REQUIRE_EQUAL(n->key(), key);
        CAF_REQUIRE_EQUAL(n->value(), it->second.first);
        CAF_REQUIRE_EQUAL(n->deleted() ? -1 : n->expire_at_ms(), it->second.second);
      }
    } else if (dice < 999) {
      bool inserted = model.find(key) == model.end();
      model[key] = {std::string{}, -1};
      CAF_REQUIRE_EQUAL(t.mark_deleted(key, h), inserted);
    } else if (rng() % 20 == 0) {
      t.clear();
      model.clear();
    }
    if (i % 20'000 == 0) compare_all();
  }
  compare_all();
}

}  // namespace

CAF_TEST(random ops agree with std unordered_map) {
  differential(hash_key, 300'000, 20'000, 1);
}

CAF_TEST(random ops agree with std unordered_map under colliding hashes) {
  differential(colliding_hash, 100'000, 1'000, 2);
}
