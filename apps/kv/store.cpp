#include "apps/kv/store.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace walrus::kv {

namespace {

constexpr uint64_t all_shards = (uint64_t{1} << store_shard_count) - 1;

uint64_t mix(uint64_t h, uint64_t v) noexcept {
  h ^= v * 0x9E3779B97F4A7C15ull;
  h = (h << 31) | (h >> 33);
  return h * 0xBF58476D1CE4E5B9ull;
}

uint64_t hash_bytes(uint64_t h, std::string_view data) noexcept {
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data.data() + i, 8);
    h = mix(h, word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data.data() + i, data.size() - i);
  return mix(mix(h, tail), data.size());
}

}  // namespace

uint64_t record_hash(std::string_view key, std::string_view value, int64_t expire_at_ms) noexcept {
  uint64_t h = mix(0x6A09E667F3BCC908ull, static_cast<uint64_t>(expire_at_ms));
  h = hash_bytes(hash_bytes(h, key), value);
  // splitmix64's finaliser, so that sums of hashes stay well spread.
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

record::record(const record& other)
    : value(other.value), expire_at_ms(other.expire_at_ms), owned_(other.owned_) {
  if (other.owns_value()) value = owned_;
}

record::record(record&& other) noexcept : value(other.value), expire_at_ms(other.expire_at_ms) {
  bool owning = other.owns_value();
  owned_ = std::move(other.owned_);
  if (owning) value = owned_;
  other.value = {};
}

record& record::operator=(const record& other) {
  if (this == &other) return *this;
  owned_ = other.owned_;
  value = other.owns_value() ? std::string_view{owned_} : other.value;
  expire_at_ms = other.expire_at_ms;
  return *this;
}

record& record::operator=(record&& other) noexcept {
  if (this == &other) return *this;
  bool owning = other.owns_value();
  owned_ = std::move(other.owned_);
  value = owning ? std::string_view{owned_} : other.value;
  expire_at_ms = other.expire_at_ms;
  other.value = {};
  return *this;
}

void record::assign(std::string_view v, int64_t expire) {
  owned_.assign(v.data(), v.size());
  value = owned_;
  expire_at_ms = expire;
}

bool store_image::insert(std::string_view key, std::string_view value, int64_t expire_at_ms) {
  uint64_t hash = hash_key(key);
  table& shard = shards_[shard_of_hash(hash)];
  if (shard.find(key, hash) != nullptr) return false;
  bool inserted = shard.upsert(key, hash, value, expire_at_ms);
  assert(inserted);
  ++size_;
  return inserted;
}

store::shard_locks::shard_locks(const store& owner, uint64_t mask, bool exclusive)
    : owner_(owner), mask_(mask), exclusive_(exclusive) {
  assert((mask_ >> store_shard_count) == 0);
  for (size_t i = 0; i < store_shard_count; ++i) {
    if ((mask_ >> i & 1) == 0) continue;
    if (exclusive_)
      owner_.shards_[i].mutex.lock();
    else
      owner_.shards_[i].mutex.lock_shared();
  }
}

store::shard_locks::~shard_locks() {
  for (size_t i = store_shard_count; i-- > 0;) {
    if ((mask_ >> i & 1) == 0) continue;
    if (exclusive_)
      owner_.shards_[i].mutex.unlock();
    else
      owner_.shards_[i].mutex.unlock_shared();
  }
}

store::~store() {
  assert(!snapshot_open_ && "a snapshot cursor outlives its store");
}

status store::apply(const transaction& tx) {
  std::lock_guard<std::mutex> writer{apply_mutex_};
  if (tx.entries.empty())
    return status{errc::invalid_argument,
                  "empty kv transaction at sequence " + std::to_string(tx.first_sequence)};
  auto applied = applied_.load(std::memory_order_relaxed);
  if (tx.first_sequence != applied + 1)
    return status{errc::sequence_gap, "kv transaction at sequence " +
                                          std::to_string(tx.first_sequence) + " after applied " +
                                          std::to_string(applied)};
  decoded_.resize(tx.entries.size());
  hashes_.resize(tx.entries.size());
  uint64_t mask = 0;
  for (size_t i = 0; i < tx.entries.size(); ++i) {
    if (auto st = decode_op(tx.entries[i], decoded_[i]); !st.ok())
      return status{st.code(),
                    "sequence " + std::to_string(tx.first_sequence + i) + ": " + st.message()};
    if (decoded_[i].kind == op_kind::flush_all) {
      hashes_[i] = 0;
      mask = all_shards;
    } else {
      hashes_[i] = hash_key(decoded_[i].key);
      mask |= uint64_t{1} << shard_of_hash(hashes_[i]);
    }
  }
  {
    shard_locks locks{*this, mask, true};
    for (size_t i = 0; i < decoded_.size(); ++i) apply_op(decoded_[i], hashes_[i]);
    applied_.store(tx.last_sequence(), std::memory_order_release);
  }
  freed_.clear();  // tables emptied by FLUSHALL, freed without holding the locks
  return status{};
}

void store::apply_op(const op& o, uint64_t hash) {
  switch (o.kind) {
    case op_kind::set: set_record(shards_[shard_of_hash(hash)], o, hash); return;
    case op_kind::del: delete_record(shards_[shard_of_hash(hash)], o.key, hash); return;
    case op_kind::flush_all:
      for (auto& s : shards_) clear_shard(s);
      keys_.store(0, std::memory_order_relaxed);
      return;
  }
  assert(!"decode_op returned an unknown kind");
}

void store::prefetch(std::string_view entry) const noexcept {
  op o;
  if (decode_op(entry, o).ok() && o.kind != op_kind::flush_all) prefetch_key(o.key);
}

void store::set_record(shard& s, const op& o, uint64_t hash) {
  assert(o.kind == op_kind::set && o.expire_at_ms >= 0);
  if (!s.frozen) {
    if (s.main.upsert(o.key, hash, o.value, o.expire_at_ms))
      keys_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  bool existed = find(s, o.key, hash) != nullptr;
  s.overlay.upsert(o.key, hash, o.value, o.expire_at_ms);
  if (!existed) keys_.fetch_add(1, std::memory_order_relaxed);
}

void store::delete_record(shard& s, std::string_view key, uint64_t hash) {
  if (!s.frozen) {
    if (!s.main.erase(key, hash)) return;
  } else {
    if (find(s, key, hash) == nullptr) return;
    s.overlay.mark_deleted(key, hash);
  }
  assert(keys_.load(std::memory_order_relaxed) > 0);
  keys_.fetch_sub(1, std::memory_order_relaxed);
}

void store::clear_shard(shard& s) {
  if (s.frozen) {
    s.main_cleared = true;  // main is the snapshot's: it goes at thaw()
    s.overlay.clear();
    return;
  }
  freed_.emplace_back();
  freed_.back().swap(s.main);
}

const table::node* store::find(const shard& s, std::string_view key, uint64_t hash) {
  if (s.frozen) {
    if (const table::node* n = s.overlay.find(key, hash)) return n->deleted() ? nullptr : n;
    if (s.main_cleared) return nullptr;
  }
  return s.main.find(key, hash);
}

// fn(const table::node&) for every record the shard holds now (overlay
// included); the caller holds the shard's lock.
template <class F>
void store::for_each_record(const shard& s, F&& fn) {
  if (!s.frozen) {
    s.main.for_each([&](const table::node& n, uint64_t) { fn(n); });
    return;
  }
  s.overlay.for_each([&](const table::node& n, uint64_t) {
    if (!n.deleted()) fn(n);
  });
  if (s.main_cleared) return;
  s.main.for_each([&](const table::node& n, uint64_t hash) {
    if (s.overlay.find(n.key(), hash) == nullptr) fn(n);
  });
}

bool store::get(std::string_view key, int64_t now_ms, record& out) const {
  return read(key, now_ms, [&](const record& r) { out.assign(r.value, r.expire_at_ms); });
}

content_digest store::digest() const {
  shard_locks locks{*this, all_shards, false};
  content_digest out;
  out.sequence = applied_.load(std::memory_order_acquire);
  for (auto& s : shards_)
    for_each_record(s, [&](const table::node& n) {
      ++out.keys;
      out.hash += record_hash(n.key(), n.value(), n.expire_at_ms());
    });
  assert(out.keys == dbsize());
  return out;
}

std::vector<dump_entry> store::dump() const {
  std::vector<dump_entry> out;
  {
    shard_locks locks{*this, all_shards, false};
    for (auto& s : shards_)
      for_each_record(s, [&](const table::node& n) {
        out.push_back(dump_entry{std::string{n.key()}, std::string{n.value()}, n.expire_at_ms()});
      });
  }
  std::sort(out.begin(), out.end(),
            [](const dump_entry& a, const dump_entry& b) { return a.key < b.key; });
  return out;
}

std::pair<size_t, size_t> store::count_live(int64_t now_ms) const {
  size_t live = 0;
  size_t with_expiry = 0;
  for (auto& s : shards_) {
    std::shared_lock<std::shared_mutex> lock{s.mutex};
    for_each_record(s, [&](const table::node& n) {
      if (expired_at(n.expire_at_ms(), now_ms)) return;
      ++live;
      if (n.expire_at_ms() != 0) ++with_expiry;
    });
  }
  return {live, with_expiry};
}

size_t store::collect_expired(size_t& shard_cursor, int64_t now_ms, size_t max_keys,
                              std::vector<std::string>& out) const {
  shard_cursor %= store_shard_count;
  const shard& s = shards_[shard_cursor];
  shard_cursor = (shard_cursor + 1) % store_shard_count;
  size_t found = 0;
  std::shared_lock<std::shared_mutex> lock{s.mutex};
  for_each_record(s, [&](const table::node& n) {
    if (found < max_keys && expired_at(n.expire_at_ms(), now_ms)) {
      out.emplace_back(n.key());
      ++found;
    }
  });
  return found;
}

}  // namespace walrus::kv
