#define CAF_SUITE kv_store
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "apps/kv/store.hpp"

using namespace walrus;
using namespace walrus::kv;

namespace {

constexpr int64_t now = 1'700'000'000'000;

// Applies one transaction built by `fill` right after the store's sequence.
status commit(store& db, const std::function<void(op_batch&)>& fill) {
  op_batch batch;
  fill(batch);
  transaction tx;
  batch.to_transaction(db.applied_sequence() + 1, tx);
  return db.apply(tx);
}

std::string value_of(const store& db, std::string_view key, int64_t at = now) {
  std::string out = "<absent>";
  db.read(key, at, [&](const record& r) { out = r.value; });
  return out;
}

// Two keys that live in different shards.
std::pair<std::string, std::string> keys_in_two_shards() {
  std::string a = "a";
  for (int i = 0;; ++i) {
    auto b = "b" + std::to_string(i);
    if (shard_of(a) != shard_of(b)) return {a, b};
  }
}

}  // namespace

CAF_TEST(applied ops change the store and its sequence) {
  store db;
  CAF_CHECK_EQUAL(db.applied_sequence(), 0u);
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("a", "1", 0), b.add_set("b", "2", 0); }).ok());
  CAF_CHECK_EQUAL(db.applied_sequence(), 2u);
  CAF_CHECK_EQUAL(value_of(db, "a"), "1");
  CAF_CHECK_EQUAL(db.dbsize(), 2u);
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("a", "3", 0), b.add_del("b"); }).ok());
  CAF_CHECK_EQUAL(value_of(db, "a"), "3");
  CAF_CHECK_EQUAL(value_of(db, "b"), "<absent>");
  CAF_CHECK_EQUAL(db.dbsize(), 1u);
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_del("missing"); }).ok());
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_flush_all(), b.add_set("c", "4", 0); }).ok());
  CAF_CHECK_EQUAL(db.dbsize(), 1u);
  CAF_CHECK_EQUAL(value_of(db, "c"), "4");
  CAF_CHECK_EQUAL(db.applied_sequence(), 7u);
}

CAF_TEST(a gap an empty transaction or a damaged entry change nothing) {
  store db;
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("a", "1", 0); }).ok());
  op_batch batch;
  batch.add_set("a", "2", 0);
  transaction tx;
  batch.to_transaction(5, tx);
  CAF_CHECK(db.apply(tx).code() == errc::sequence_gap);
  transaction empty{2, {}};
  CAF_CHECK(db.apply(empty).code() == errc::invalid_argument);
  batch.to_transaction(2, tx);
  tx.entries.push_back("\xff\xff");  // a damaged second entry
  auto st = db.apply(tx);
  CAF_CHECK(st.code() == errc::malformed_frame);
  CAF_CHECK(st.message().find("sequence 3") != std::string::npos);
  CAF_CHECK_EQUAL(value_of(db, "a"), "1");
  CAF_CHECK_EQUAL(db.applied_sequence(), 1u);
}

CAF_TEST(expired keys read as absent but stay until deleted) {
  store db;
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("t", "v", now + 1000); }).ok());
  CAF_CHECK_EQUAL(value_of(db, "t", now + 999), "v");
  CAF_CHECK_EQUAL(value_of(db, "t", now + 1000), "<absent>");
  record r;
  CAF_CHECK(!db.get("t", now + 5000, r));
  CAF_CHECK_EQUAL(db.dbsize(), 1u);  // the content does not depend on the clock
  CAF_CHECK_EQUAL(db.count_live(now).first, 1u);
  CAF_CHECK_EQUAL(db.count_live(now + 1000).first, 0u);
  std::vector<std::string> expired;
  size_t cursor = 0;
  for (size_t i = 0; i < store_shard_count; ++i)
    db.collect_expired(cursor, now + 1000, 10, expired);
  CAF_CHECK(expired == std::vector<std::string>{"t"});
}

CAF_TEST(a multi key transaction is atomic for multi key readers) {
  store db;
  auto [a, b] = keys_in_two_shards();
  CAF_REQUIRE(commit(db, [&](op_batch& x) { x.add_set(a, "0", 0), x.add_set(b, "0", 0); }).ok());
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader{[&] {
    std::string_view keys[] = {a, b};
    while (!done.load()) {
      std::string seen[2];
      db.read_many(keys, 2, now, [&](size_t i, const record* r) { seen[i] = r ? r->value : ""; });
      if (seen[0] != seen[1]) ++torn;
    }
  }};
  for (int i = 1; i <= 20000; ++i) {
    auto v = std::to_string(i);
    CAF_REQUIRE(commit(db, [&](op_batch& x) { x.add_set(a, v, 0), x.add_set(b, v, 0); }).ok());
  }
  done = true;
  reader.join();
  CAF_CHECK_EQUAL(torn.load(), 0);
}

CAF_TEST(the digest depends on content and sequence only) {
  store one;
  store two;
  CAF_REQUIRE(
      commit(one, [](op_batch& b) { b.add_set("x", "1", 0), b.add_set("y", "2", 5); }).ok());
  CAF_REQUIRE(
      commit(two, [](op_batch& b) { b.add_set("y", "2", 5), b.add_set("x", "1", 0); }).ok());
  CAF_CHECK(one.digest() == two.digest());
  CAF_CHECK(one.dump() == two.dump());
  CAF_CHECK_EQUAL(one.digest().keys, 2u);
  store three;
  CAF_REQUIRE(
      commit(three, [](op_batch& b) { b.add_set("y", "2", 6), b.add_set("x", "1", 0); }).ok());
  CAF_CHECK(one.digest() != three.digest());  // only the expiry differs
}

CAF_TEST(a snapshot cursor sees the frozen state while writes go on) {
  store db;
  for (int i = 0; i < 500; ++i)
    CAF_REQUIRE(
        commit(db, [&](op_batch& b) { b.add_set("k" + std::to_string(i), "old", 0); }).ok());
  auto before = db.dump();
  auto cursor = db.begin_snapshot();
  CAF_REQUIRE(cursor.ok());
  CAF_CHECK((*cursor)->sequence() == 500u);
  CAF_CHECK(db.begin_snapshot().error().code() == errc::invalid_transition);
  std::vector<dump_entry> seen;
  record_ref ref;
  int step = 0;
  while ((*cursor)->next(ref)) {
    seen.push_back(dump_entry{std::string{ref.key}, std::string{ref.value}, ref.expire_at_ms});
    // Interleave every kind of change with the walk.
    auto k = "k" + std::to_string(step % 500);
    switch (step++ % 5) {
      case 0: CAF_REQUIRE(commit(db, [&](op_batch& b) { b.add_set(k, "new", 0); }).ok()); break;
      case 1: CAF_REQUIRE(commit(db, [&](op_batch& b) { b.add_del(k); }).ok()); break;
      case 2:
        CAF_REQUIRE(commit(db, [&](op_batch& b) { b.add_set("n" + k, "new", 0); }).ok());
        break;
      case 3:
        if (step == 4) CAF_REQUIRE(commit(db, [&](op_batch& b) { b.add_flush_all(); }).ok());
        break;
      default: CAF_CHECK_EQUAL(value_of(db, "n" + k), "<absent>"); break;
    }
  }
  std::sort(seen.begin(), seen.end(),
            [](const dump_entry& x, const dump_entry& y) { return x.key < y.key; });
  CAF_CHECK(seen == before);
  // The live state went on: after the flush at step 3, only later writes.
  auto after = db.dump();
  CAF_CHECK_EQUAL(after.size(), db.dbsize());
  CAF_CHECK_EQUAL(db.digest().keys, db.dbsize());
  for (auto& e : after) CAF_CHECK_EQUAL(e.value, "new");
  cursor->reset();
  CAF_CHECK(db.dump() == after);
  CAF_CHECK(db.begin_snapshot().ok());
}

CAF_TEST(install replaces content and sequence and refuses during a snapshot) {
  store db;
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("old", "1", 0); }).ok());
  store_image image;
  CAF_CHECK(image.insert("new", "2", 0));
  CAF_CHECK(!image.insert("new", "3", 0));
  {
    auto cursor = db.begin_snapshot();
    CAF_REQUIRE(cursor.ok());
    CAF_CHECK(db.install(image, 77).code() == errc::invalid_transition);
  }
  CAF_REQUIRE(db.install(image, 77).ok());
  CAF_CHECK_EQUAL(db.applied_sequence(), 77u);
  CAF_CHECK_EQUAL(value_of(db, "new"), "2");
  CAF_CHECK_EQUAL(value_of(db, "old"), "<absent>");
  CAF_CHECK_EQUAL(db.dbsize(), 1u);
  CAF_CHECK_EQUAL(image.size(), 1u);  // the old content, for the caller to free
}

CAF_TEST(get copies the record out of the store) {
  store db;
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("k", "first", now + 5000); }).ok());
  record r;
  CAF_REQUIRE(db.get("k", now, r));
  // The store's bytes change and go; the copy and its copies stay.
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("k", "other", 0); }).ok());
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("k", std::string(500, 'x'), 0); }).ok());
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_del("k"); }).ok());
  CAF_CHECK_EQUAL(std::string{r.value}, "first");
  CAF_CHECK_EQUAL(r.expire_at_ms, now + 5000);
  record copy{r};
  record moved{std::move(r)};
  r = copy;
  copy = std::move(moved);
  for (auto* x : {&r, &copy}) CAF_CHECK_EQUAL(std::string{x->value}, "first");
  CAF_CHECK(r.value.data() != copy.value.data());
}
