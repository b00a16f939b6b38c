// The replicated key-value state of walrus-kv: a walrus state machine.
// Replicated transactions (WAL entries that are encoded walrus.kv.Op, see
// ops.hpp) change it through apply(); connections read it from any thread.
//
// Concurrency: 32 shards, each a hash table under its own shared_mutex. A
// transaction locks every shard it touches (ascending order) exclusively for
// the whole transaction, so a reader that locks the shards of its keys
// (MGET, EXISTS) sees a transaction entirely or not at all. apply() is
// called by one writer at a time (the replica's applier, or the primary's
// writer); it is serialised by a mutex in any case.
//
// Layout: a shard's records are a kv::table (table.hpp): open addressing
// over a flat slot array, one allocation per record holding its expiry, key
// and value, so a lookup costs about two cache misses and a SET over a key
// of similar size reuses the record's memory. A key is hashed once per
// operation with hash_key(): the top 5 bits pick the shard, the low bits the
// slot in the shard's table.
//
// Expiry: a record holds an absolute expiry (ms since the epoch). Reads take
// `now_ms` and treat an expired record as absent; nothing is removed except
// by replicated ops, so the content (dbsize, digest, snapshots) depends only
// on the applied sequence, never on a node's clock. The primary removes
// expired keys by logging Del ops (collect_expired + commands.hpp).
//
// Snapshots: begin_snapshot() freezes the state at the applied sequence
// without copying it. While a shard is frozen its main table is read-only
// and changes go to a per-shard overlay table (a deleted key is a node
// marked deleted) that reads consult first; the cursor walks the frozen
// table slot by slot, then merges the overlay back by moving its nodes (no
// copy of key or value bytes). Extra memory is the keys written during the
// snapshot, not a second copy of the store. FLUSHALL while frozen empties
// the overlay and marks the main table cleared; it is freed at the merge.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "actors/state_machine.hpp"
#include "apps/kv/ops.hpp"
#include "apps/kv/table.hpp"
#include "base/status.hpp"

namespace walrus::kv {

inline bool expired_at(int64_t expire_at_ms, int64_t now_ms) noexcept {
  return expire_at_ms != 0 && expire_at_ms <= now_ms;
}

// A record as readers see it. In the callbacks of store::read() and
// read_many(), `value` views the store's bytes: valid inside the callback
// only (under the shard's lock). store::get() fills an owning copy: `value`
// then views the record's own buffer, which copies and moves of the record
// carry along.
class record {
 public:
  std::string_view value;
  int64_t expire_at_ms = 0;  // 0 = no expiry

  record() = default;
  record(std::string_view v, int64_t expire) noexcept : value(v), expire_at_ms(expire) {}
  record(const record& other);
  record(record&& other) noexcept;
  record& operator=(const record& other);
  record& operator=(record&& other) noexcept;
  ~record() = default;

  bool expired(int64_t now_ms) const noexcept { return expired_at(expire_at_ms, now_ms); }

  // Copies `v` into the record's own buffer (reusing its capacity).
  void assign(std::string_view v, int64_t expire);

 private:
  bool owns_value() const noexcept { return value.data() == owned_.data(); }

  std::string owned_;
};

// A record with its key, as snapshots and dumps see it.
struct record_ref {
  std::string_view key;
  std::string_view value;
  int64_t expire_at_ms = 0;
};

struct dump_entry {
  std::string key;
  std::string value;
  int64_t expire_at_ms = 0;

  bool operator==(const dump_entry& other) const {
    return key == other.key && value == other.value && expire_at_ms == other.expire_at_ms;
  }
};

// An order-independent fingerprint of the whole content: equal content at
// equal sequence gives equal digests on every node.
struct content_digest {
  uint64_t sequence = 0;
  uint64_t keys = 0;
  uint64_t hash = 0;  // sum of record_hash() over all records, mod 2^64

  bool operator==(const content_digest& other) const {
    return sequence == other.sequence && keys == other.keys && hash == other.hash;
  }
  bool operator!=(const content_digest& other) const { return !(*this == other); }
};

uint64_t record_hash(std::string_view key, std::string_view value, int64_t expire_at_ms) noexcept;

// A uint64_t mask names a set of shards. 32 keeps operations that lock
// every shard (FLUSHALL, digest, freeze, install) below ThreadSanitizer's
// limit of 64 locks held at once.
constexpr size_t store_shard_count = 32;

// The shard of a key whose hash_key() is `hash`: its top 5 bits.
constexpr size_t shard_of_hash(uint64_t hash) noexcept {
  static_assert(store_shard_count == 32, "shard_of_hash() takes the top 5 bits");
  return static_cast<size_t>(hash >> 59);
}

inline size_t shard_of(std::string_view key) noexcept {
  return shard_of_hash(hash_key(key));
}

// Content built outside the store (by the snapshot loader), then installed
// whole with store::install.
class store_image {
 public:
  // False when `key` is already present (nothing changes).
  [[nodiscard]] bool insert(std::string_view key, std::string_view value, int64_t expire_at_ms);
  size_t size() const noexcept { return size_; }

 private:
  friend class store;
  std::array<table, store_shard_count> shards_;
  size_t size_ = 0;
};

class store final : public state_machine {
 public:
  class snapshot_cursor;

  store() = default;
  ~store() override;
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Decodes every entry first (a damaged one rejects the transaction with
  // nothing applied), then applies all ops under the locks of every shard
  // they touch. first_sequence must be applied_sequence() + 1
  // (errc::sequence_gap otherwise).
  [[nodiscard]] status apply(const transaction& tx) override;
  uint64_t applied_sequence() const override { return applied_.load(std::memory_order_acquire); }

  // Calls fn(const record&) under the key's shard lock when the key is live
  // at `now_ms` (the record views the store: see record); false when it is
  // absent or expired.
  template <class F>
  bool read(std::string_view key, int64_t now_ms, F&& fn) const;

  // For each of `n` keys, fn(index, const record* or nullptr when absent or
  // expired), with the shards of all keys locked at once.
  template <class F>
  void read_many(const std::string_view* keys, size_t n, int64_t now_ms, F&& fn) const;

  // An owning copy of the key's record when it is live at `now_ms`.
  bool get(std::string_view key, int64_t now_ms, record& out) const;

  // A hint that `key` is looked up soon (the writer calls it a few commands
  // ahead): its slot is loaded while earlier commands run. Takes no lock.
  void prefetch_key(std::string_view key) const noexcept {
    auto hash = hash_key(key);
    shards_[shard_of_hash(hash)].main.prefetch(hash);
  }
  // The same for the key of an encoded op (the replica's applier).
  void prefetch(std::string_view entry) const noexcept override;

  // Records held, expired ones not yet deleted included (like Redis's DBSIZE).
  size_t dbsize() const noexcept { return keys_.load(std::memory_order_relaxed); }
  // Consistent (all shards locked at once, shared) at one sequence. O(n).
  content_digest digest() const;
  // Every record, sorted by key (tests). O(n log n).
  std::vector<dump_entry> dump() const;
  // Live keys and live keys with an expiry at `now_ms`, for INFO. O(n).
  std::pair<size_t, size_t> count_live(int64_t now_ms) const;

  // Appends to `out` up to `max_keys` keys of shard `shard_cursor` that are
  // expired at `now_ms`, then advances the cursor (round robin); the primary
  // deletes them through the WAL. Returns how many it appended.
  size_t collect_expired(size_t& shard_cursor, int64_t now_ms, size_t max_keys,
                         std::vector<std::string>& out) const;

  // Freezes the state at applied_sequence() for a snapshot (see above).
  // errc::invalid_transition while another cursor is open.
  [[nodiscard]] result<std::unique_ptr<snapshot_cursor>> begin_snapshot();

  // Replaces the whole content and the applied sequence (a replica
  // bootstrapping from a snapshot). `image` receives the old content, to be
  // freed by the caller outside any lock. errc::invalid_transition while a
  // snapshot cursor is open.
  [[nodiscard]] status install(store_image& image, uint64_t applied_sequence);

 private:
  struct alignas(64) shard {
    mutable std::shared_mutex mutex;
    table main;
    // Copy-on-write while a snapshot cursor has not passed this shard:
    // `main` is the state at the snapshot's sequence and is not modified.
    bool frozen = false;
    bool main_cleared = false;  // FLUSHALL while frozen: main's records are gone
    table overlay;              // changes since the freeze; deleted() = deleted key
  };

  // Locks the shards of `mask` in ascending order, unlocks on destruction.
  class shard_locks;

  // The key's live-or-expired node (`hash` = hash_key(key)); nullptr when
  // absent.
  static const table::node* find(const shard& s, std::string_view key, uint64_t hash);
  static bool live(const table::node* n, int64_t now_ms) noexcept {
    return n != nullptr && !expired_at(n->expire_at_ms(), now_ms);
  }
  template <class F>
  static void for_each_record(const shard& s, F&& fn);

  void apply_op(const op& o, uint64_t hash);
  void set_record(shard& s, const op& o, uint64_t hash);
  void delete_record(shard& s, std::string_view key, uint64_t hash);
  void clear_shard(shard& s);
  void thaw(size_t index);
  void end_snapshot();

  std::array<shard, store_shard_count> shards_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<size_t> keys_{0};
  std::mutex apply_mutex_;        // one apply()/install() at a time
  std::vector<op> decoded_;       // scratch of apply(), under apply_mutex_
  std::vector<uint64_t> hashes_;  // hash_key() of each decoded op's key, likewise
  std::vector<table> freed_;      // tables emptied by FLUSHALL, freed after unlocking
  bool snapshot_open_ = false;    // changed with every shard locked
};

// The state at one sequence, record by record, while the store goes on
// applying transactions. Must not outlive its store.
class store::snapshot_cursor {
 public:
  snapshot_cursor(store& owner, uint64_t sequence, size_t keys)
      : owner_(owner), sequence_(sequence), keys_(keys) {}
  ~snapshot_cursor();
  snapshot_cursor(const snapshot_cursor&) = delete;
  snapshot_cursor& operator=(const snapshot_cursor&) = delete;

  uint64_t sequence() const noexcept { return sequence_; }
  size_t keys() const noexcept { return keys_; }  // records at sequence()

  // The next record (views valid until the next call); false at the end.
  bool next(record_ref& out);

 private:
  store& owner_;
  uint64_t sequence_;
  size_t keys_;
  size_t shard_ = 0;
  size_t slot_ = 0;  // in the frozen main table of shard_
};

class store::shard_locks {
 public:
  shard_locks(const store& owner, uint64_t mask, bool exclusive);
  ~shard_locks();
  shard_locks(const shard_locks&) = delete;
  shard_locks& operator=(const shard_locks&) = delete;

 private:
  const store& owner_;
  uint64_t mask_;
  bool exclusive_;
};

template <class F>
bool store::read(std::string_view key, int64_t now_ms, F&& fn) const {
  uint64_t hash = hash_key(key);
  const shard& s = shards_[shard_of_hash(hash)];
  std::shared_lock<std::shared_mutex> lock{s.mutex};
  const table::node* n = find(s, key, hash);
  if (!live(n, now_ms)) return false;
  const record r{n->value(), n->expire_at_ms()};
  fn(r);
  return true;
}

template <class F>
void store::read_many(const std::string_view* keys, size_t n, int64_t now_ms, F&& fn) const {
  constexpr size_t local_hashes = 16;
  uint64_t local[local_hashes];
  std::unique_ptr<uint64_t[]> heap;
  if (n > local_hashes) heap = std::make_unique<uint64_t[]>(n);
  uint64_t* hashes = heap != nullptr ? heap.get() : local;
  uint64_t mask = 0;
  for (size_t i = 0; i < n; ++i) {
    hashes[i] = hash_key(keys[i]);
    mask |= uint64_t{1} << shard_of_hash(hashes[i]);
  }
  shard_locks locks{*this, mask, false};
  for (size_t i = 0; i < n; ++i) {
    const table::node* node = find(shards_[shard_of_hash(hashes[i])], keys[i], hashes[i]);
    if (!live(node, now_ms)) {
      fn(i, static_cast<const record*>(nullptr));
      continue;
    }
    const record r{node->value(), node->expire_at_ms()};
    fn(i, &r);
  }
}

}  // namespace walrus::kv
