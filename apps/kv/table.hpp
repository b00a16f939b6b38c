// The hash table under walrus-kv's store (a shard's records, a snapshot's
// overlay, a loaded image), built for the SET path of the writer and the
// replica's applier: a lookup reads one slot of a flat array, then one node
// that holds the key and the value together, so a hit costs about two cache
// misses (a std::unordered_map<std::string, ...> costs four to six: bucket,
// node before, node, key bytes, value bytes).
//
// Slots: a power-of-two array of {hash, node*}; a key's probe starts at
// hash & (slots - 1) and goes forward (linear probing); the full hash in the
// slot means a probe touches a node only on a hash match. Erase shifts the
// following entries back (no tombstones), so probe lengths only depend on
// the keys present. The array doubles when an insert would pass a load of
// 3/4 and shrinks only at clear().
//
// Node: one heap allocation per key: a 24-byte header (expiry, key length,
// value length, value capacity, flags), the key bytes, then the value bytes.
// Overwriting a value reuses the node when the value fits its capacity (and
// is not under a quarter of a large one), so a SET over a key of about the
// same size neither allocates nor frees. Keys and values are at most
// max_bytes (std::length_error above it).
//
// The hash of a key is hash_key() unless the table is built with another
// function (tests force collisions that way). Every operation has an
// overload taking the key's hash, so a caller that already hashed the key
// (the store picks the shard from the top bits) does not hash it again.
//
// Not thread-safe: the store's shard locks guard its tables.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace walrus::kv {

namespace detail {

__extension__ using uint128 = unsigned __int128;

// The 128-bit product of a and b, folded to 64 bits (wyhash's mixer).
constexpr uint64_t fold_multiply(uint64_t a, uint64_t b) noexcept {
  uint128 product = static_cast<uint128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

inline uint64_t load64(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint64_t load32(const char* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr uint64_t hash_secret0 = 0xa0761d6478bd642full;
constexpr uint64_t hash_secret1 = 0xe7037ed1a0b428dbull;
constexpr uint64_t hash_secret2 = 0x8ebc6af09c88c6e3ull;
// Drawn once per process (std::random_device): clients cannot choose keys
// that collide, as they could against a fixed hash and make every probe
// walk a long run (Redis seeds its SipHash the same way). Nothing depends
// on the order of records: digests add record hashes, snapshot files are
// read back in any order, dumps are sorted.
uint64_t make_hash_seed() noexcept;
inline const uint64_t hash_seed = make_hash_seed();

}  // namespace detail

// A fast 64-bit hash of key bytes in the style of wyhash: up to 16 bytes
// take two multiplications; every bit of the result depends on every input
// byte, so both its top bits (the store's shard) and its low bits (the
// table's slot) are well spread. Keyed by a per-process random seed.
inline uint64_t hash_key(std::string_view key) noexcept {
  using detail::load32;
  using detail::load64;
  const char* p = key.data();
  const size_t n = key.size();
  uint64_t seed = detail::hash_seed;
  uint64_t a;
  uint64_t b;
  if (n <= 16) {
    if (n >= 4) {
      // Two overlapping 4-byte reads from each end cover 4..16 bytes.
      const size_t middle = (n >> 3) << 2;
      a = (load32(p) << 32) | load32(p + middle);
      b = (load32(p + n - 4) << 32) | load32(p + n - 4 - middle);
    } else if (n > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
          (uint64_t{static_cast<uint8_t>(p[n >> 1])} << 8) |
          uint64_t{static_cast<uint8_t>(p[n - 1])};
      b = 0;
    } else {
      a = 0;
      b = 0;
    }
  } else {
    size_t left = n;
    while (left > 16) {
      seed = detail::fold_multiply(load64(p) ^ detail::hash_secret1, load64(p + 8) ^ seed);
      p += 16;
      left -= 16;
    }
    a = load64(p + left - 16);
    b = load64(p + left - 8);
  }
  detail::uint128 product = static_cast<detail::uint128>(a ^ detail::hash_secret1) * (b ^ seed);
  a = static_cast<uint64_t>(product);
  b = static_cast<uint64_t>(product >> 64);
  return detail::fold_multiply(a ^ detail::hash_secret0 ^ n, b ^ detail::hash_secret1);
}

class table {
 public:
  // One record: key and value bytes follow the header in the same
  // allocation. Views stay valid until the node is overwritten, erased or
  // the table cleared or destroyed; the table's growth does not move nodes.
  class node {
   public:
    std::string_view key() const noexcept { return {bytes(), key_size_}; }
    std::string_view value() const noexcept { return {bytes() + key_size_, value_size_}; }
    int64_t expire_at_ms() const noexcept { return expire_at_ms_; }
    size_t value_capacity() const noexcept { return value_capacity_; }
    // A deleted marker (see mark_deleted): the key is gone, value empty.
    bool deleted() const noexcept { return (flags_ & deleted_flag) != 0; }

   private:
    friend class table;
    static constexpr uint32_t deleted_flag = 1;

    const char* bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }

    int64_t expire_at_ms_ = 0;
    uint32_t key_size_ = 0;
    uint32_t value_size_ = 0;
    uint32_t value_capacity_ = 0;
    uint32_t flags_ = 0;
  };

  struct node_deleter {
    void operator()(node* n) const noexcept;
  };
  // A node out of any table (drain, adopt).
  using node_ptr = std::unique_ptr<node, node_deleter>;
  using hash_function = uint64_t (*)(std::string_view) noexcept;

  static constexpr size_t max_bytes = UINT32_MAX;  // of a key, of a value

  explicit table(hash_function hash_fn = hash_key) noexcept : hash_(hash_fn) {}
  ~table();
  table(table&& other) noexcept;
  table& operator=(table&& other) noexcept;
  table(const table&) = delete;
  table& operator=(const table&) = delete;

  size_t size() const noexcept { return size_; }  // deleted markers included
  bool empty() const noexcept { return size_ == 0; }
  uint64_t hash(std::string_view key) const noexcept { return hash_(key); }

  // In every overload below that takes `hash`, it must be hash(key).

  // The key's node (a deleted marker included); nullptr when absent.
  const node* find(std::string_view key) const noexcept { return find(key, hash(key)); }
  const node* find(std::string_view key, uint64_t hash) const noexcept;

  // Sets the key's value and expiry (clearing a deleted mark); true when the
  // key was absent.
  bool upsert(std::string_view key, std::string_view value, int64_t expire_at_ms) {
    return upsert(key, hash(key), value, expire_at_ms);
  }
  bool upsert(std::string_view key, uint64_t hash, std::string_view value, int64_t expire_at_ms) {
    return put(key, hash, value, expire_at_ms, 0);
  }

  // Holds the key as a deleted marker (empty value, deleted() true): a
  // meaning the table's user gives it (the store's snapshot overlay). True
  // when the key was absent.
  bool mark_deleted(std::string_view key, uint64_t hash) {
    return put(key, hash, {}, 0, node::deleted_flag);
  }

  // Removes the key and frees its node; false when absent.
  bool erase(std::string_view key) { return erase(key, hash(key)); }
  bool erase(std::string_view key, uint64_t hash) noexcept;

  // Makes room for `count` nodes, so that inserts up to that size neither
  // allocate slots nor throw (the snapshot merge relies on it).
  void reserve(size_t count);

  // Frees every node and the slot array.
  void clear() noexcept;
  void swap(table& other) noexcept;

  // Takes `n` (whose key hashes to `hash`), in place of the node holding
  // the same key, which is freed. True when the key was absent. Moves no
  // key or value bytes.
  bool adopt(uint64_t hash, node_ptr n);

  // Hands every node to fn(uint64_t hash, node_ptr) and ends empty, with
  // its slot array freed.
  template <class F>
  void drain(F&& fn);

  // Iteration by slot: slot i holds node_at(i) (nullptr when empty), with
  // hash_at(i). Stable while the table is not modified.
  size_t slot_count() const noexcept { return slots_ == nullptr ? 0 : mask_ + 1; }
  const node* node_at(size_t i) const noexcept { return slots_[i].item; }
  uint64_t hash_at(size_t i) const noexcept { return slots_[i].hash; }

  // Asks the CPU to load the slot where the probe for `hash` starts, ahead
  // of the lookup. Safe from any thread at any time: it reads a copy of the
  // slot array's address kept in atomics, and prefetching a stale address
  // is only a wasted hint.
  void prefetch(uint64_t hash) const noexcept {
    auto base = hint_slots_.load(std::memory_order_relaxed);
    auto mask = hint_mask_.load(std::memory_order_relaxed);
    if (base != 0)
      __builtin_prefetch(reinterpret_cast<const void*>(base + (hash & mask) * slot_bytes));
  }

  // fn(const node&, uint64_t hash) for every node, in slot order.
  template <class F>
  void for_each(F&& fn) const;

 private:
  struct slot {
    uint64_t hash;
    node* item;  // nullptr: empty
  };

  static node* make_node(std::string_view key, std::string_view value, size_t value_capacity);
  static void free_node(node* n) noexcept;
  static bool fits(const node& n, size_t value_size) noexcept;
  static void write_value(node& n, std::string_view value, int64_t expire_at_ms,
                          uint32_t flags) noexcept;

  bool put(std::string_view key, uint64_t hash, std::string_view value, int64_t expire_at_ms,
           uint32_t flags);
  // The slot holding `key`, or else the empty slot where its probe ends.
  // Requires a slot array.
  size_t probe(std::string_view key, uint64_t hash) const noexcept;
  // Makes room for one more node (may move the slots, never the nodes).
  void reserve_one_more();
  void rehash(size_t new_slot_count);
  void place(uint64_t hash, node* n) noexcept;  // into an empty slot
  void free_slots() noexcept;
  // Copies slots_ and mask_ into the atomics prefetch() reads.
  void publish_hint() noexcept {
    hint_slots_.store(reinterpret_cast<uintptr_t>(slots_), std::memory_order_relaxed);
    hint_mask_.store(mask_, std::memory_order_relaxed);
  }

  static constexpr size_t slot_bytes = 16;
  static_assert(sizeof(slot) == slot_bytes, "prefetch() computes slot addresses");

  slot* slots_ = nullptr;
  size_t mask_ = 0;     // slot count - 1, when slots_ != nullptr
  size_t size_ = 0;     // nodes held
  size_t grow_at_ = 0;  // the size above which the slots double
  hash_function hash_;
  std::atomic<uintptr_t> hint_slots_{0};
  std::atomic<size_t> hint_mask_{0};
};

static_assert(sizeof(table::node) == 24, "the node header is 24 bytes");

template <class F>
void table::drain(F&& fn) {
  for (size_t i = 0; i < slot_count(); ++i) {
    node* n = slots_[i].item;
    if (n == nullptr) continue;
    slots_[i].item = nullptr;
    --size_;
    fn(slots_[i].hash, node_ptr{n});
  }
  free_slots();
}

template <class F>
void table::for_each(F&& fn) const {
  for (size_t i = 0; i < slot_count(); ++i)
    if (const node* n = slots_[i].item) fn(*n, slots_[i].hash);
}

}  // namespace walrus::kv
