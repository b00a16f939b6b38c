#include "apps/kv/store.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace walrus::kv {

namespace {

constexpr uint64_t all_shards = (uint64_t{1} << store_shard_count) - 1;
static_assert(store_shard_count == 32, "shard_of() takes the top 5 bits");

// std::unordered_map<std::string, ...> (C++17) finds by std::string only:
// copy the key into a per-thread string instead of allocating one per call.
const std::string& probe(std::string_view key) {
  thread_local std::string buffer;
  buffer.assign(key.data(), key.size());
  return buffer;
}

// Reuses the value's capacity, but lets a big buffer go for a small value.
void assign_value(std::string& target, std::string_view value) {
  if (target.capacity() > 4096 && value.size() < target.capacity() / 4) {
    std::string fresh{value};
    target.swap(fresh);
    return;
  }
  target.assign(value.data(), value.size());
}

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

size_t shard_of(std::string_view key) noexcept {
  // The top bits: the maps' buckets use the same hash modulo a prime.
  return std::hash<std::string_view>{}(key) >> 59;
}

bool store_image::insert(std::string_view key, std::string_view value, int64_t expire_at_ms) {
  auto [it, inserted] = shards_[shard_of(key)].try_emplace(std::string{key});
  if (!inserted) return false;
  it->second.value.assign(value.data(), value.size());
  it->second.expire_at_ms = expire_at_ms;
  ++size_;
  return true;
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
  uint64_t mask = 0;
  for (size_t i = 0; i < tx.entries.size(); ++i) {
    if (auto st = decode_op(tx.entries[i], decoded_[i]); !st.ok())
      return status{st.code(),
                    "sequence " + std::to_string(tx.first_sequence + i) + ": " + st.message()};
    mask |= decoded_[i].kind == op_kind::flush_all ? all_shards
                                                   : uint64_t{1} << shard_of(decoded_[i].key);
  }
  {
    shard_locks locks{*this, mask, true};
    for (auto& o : decoded_) apply_op(o);
    applied_.store(tx.last_sequence(), std::memory_order_release);
  }
  freed_.clear();  // maps emptied by FLUSHALL, freed without holding the locks
  return status{};
}

void store::apply_op(const op& o) {
  switch (o.kind) {
    case op_kind::set: set_record(shards_[shard_of(o.key)], o); return;
    case op_kind::del: delete_record(shards_[shard_of(o.key)], o.key); return;
    case op_kind::flush_all:
      for (auto& s : shards_) clear_shard(s);
      keys_.store(0, std::memory_order_relaxed);
      return;
  }
  assert(!"decode_op returned an unknown kind");
}

void store::set_record(shard& s, const op& o) {
  assert(o.kind == op_kind::set && o.expire_at_ms >= 0);
  if (!s.frozen) {
    auto [it, inserted] = s.main.try_emplace(probe(o.key));
    assign_value(it->second.value, o.value);
    it->second.expire_at_ms = o.expire_at_ms;
    if (inserted) keys_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  bool existed = find(s, o.key) != nullptr;
  auto& entry = s.overlay[probe(o.key)];
  entry.deleted = false;
  assign_value(entry.rec.value, o.value);
  entry.rec.expire_at_ms = o.expire_at_ms;
  if (!existed) keys_.fetch_add(1, std::memory_order_relaxed);
}

void store::delete_record(shard& s, std::string_view key) {
  if (!s.frozen) {
    auto it = s.main.find(probe(key));
    if (it == s.main.end()) return;
    s.main.erase(it);
  } else {
    if (find(s, key) == nullptr) return;
    auto& entry = s.overlay[probe(key)];
    entry.deleted = true;
    entry.rec = record{};
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

const record* store::find(const shard& s, std::string_view key) {
  const std::string& k = probe(key);
  if (s.frozen) {
    auto it = s.overlay.find(k);
    if (it != s.overlay.end()) return it->second.deleted ? nullptr : &it->second.rec;
    if (s.main_cleared) return nullptr;
  }
  auto it = s.main.find(k);
  return it == s.main.end() ? nullptr : &it->second;
}

// fn(const std::string& key, const record&) for every record the shard holds
// now (overlay included); the caller holds the shard's lock.
template <class F>
void store::for_each_record(const shard& s, F&& fn) {
  if (s.frozen) {
    for (auto& [key, entry] : s.overlay)
      if (!entry.deleted) fn(key, entry.rec);
    if (s.main_cleared) return;
  }
  for (auto& [key, rec] : s.main)
    if (!s.frozen || s.overlay.find(key) == s.overlay.end()) fn(key, rec);
}

bool store::get(std::string_view key, int64_t now_ms, record& out) const {
  return read(key, now_ms, [&](const record& r) {
    out.value.assign(r.value);
    out.expire_at_ms = r.expire_at_ms;
  });
}

content_digest store::digest() const {
  shard_locks locks{*this, all_shards, false};
  content_digest out;
  out.sequence = applied_.load(std::memory_order_acquire);
  for (auto& s : shards_)
    for_each_record(s, [&](const std::string& key, const record& r) {
      ++out.keys;
      out.hash += record_hash(key, r.value, r.expire_at_ms);
    });
  assert(out.keys == dbsize());
  return out;
}

std::vector<dump_entry> store::dump() const {
  std::vector<dump_entry> out;
  {
    shard_locks locks{*this, all_shards, false};
    for (auto& s : shards_)
      for_each_record(s, [&](const std::string& key, const record& r) {
        out.push_back(dump_entry{key, r.value, r.expire_at_ms});
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
    for_each_record(s, [&](const std::string&, const record& r) {
      if (r.expired(now_ms)) return;
      ++live;
      if (r.expire_at_ms != 0) ++with_expiry;
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
  for_each_record(s, [&](const std::string& key, const record& r) {
    if (found < max_keys && r.expired(now_ms)) {
      out.push_back(key);
      ++found;
    }
  });
  return found;
}

}  // namespace walrus::kv
