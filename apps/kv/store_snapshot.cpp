// The store's side of snapshots: freezing (copy-on-write per shard), the
// cursor that walks the frozen state, and installing a loaded image.
#include <cassert>

#include "apps/kv/store.hpp"

namespace walrus::kv {

namespace {
constexpr uint64_t all_shards = (uint64_t{1} << store_shard_count) - 1;
}  // namespace

result<std::unique_ptr<store::snapshot_cursor>> store::begin_snapshot() {
  shard_locks locks{*this, all_shards, true};
  if (snapshot_open_)
    return status{errc::invalid_transition, "a snapshot of the store is already open"};
  for (auto& s : shards_) {
    assert(!s.frozen && !s.main_cleared && s.overlay.empty());
    s.frozen = true;
  }
  snapshot_open_ = true;
  // Consistent: apply() publishes its sequence while it holds its locks.
  auto sequence = applied_.load(std::memory_order_acquire);
  auto keys = keys_.load(std::memory_order_relaxed);
  return std::make_unique<snapshot_cursor>(*this, sequence, keys);
}

void store::thaw(size_t index) {
  assert(index < store_shard_count);
  shard& s = shards_[index];
  table cleared;  // destroyed after the lock is released
  std::unique_lock<std::shared_mutex> lock{s.mutex};
  assert(s.frozen);
  if (s.main_cleared) cleared.swap(s.main);
  // Room first (the only step that can throw: nothing moved yet), then the
  // overlay's nodes move into main as they are: no key or value copied.
  s.main.reserve(s.main.size() + s.overlay.size());
  s.overlay.drain([&](uint64_t hash, table::node_ptr n) {
    if (n->deleted())
      s.main.erase(n->key(), hash);  // the marker is freed on return
    else
      s.main.adopt(hash, std::move(n));
  });
  assert(s.overlay.empty());
  s.frozen = false;
  s.main_cleared = false;
}

void store::end_snapshot() {
  shard_locks locks{*this, all_shards, true};
  assert(snapshot_open_);
  for (auto& s : shards_) assert(!s.frozen);
  snapshot_open_ = false;
}

status store::install(store_image& image, uint64_t applied_sequence) {
  std::lock_guard<std::mutex> writer{apply_mutex_};
  shard_locks locks{*this, all_shards, true};
  if (snapshot_open_)
    return status{errc::invalid_transition,
                  "cannot install a snapshot while a snapshot of the store is open"};
  auto old_keys = keys_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < store_shard_count; ++i) shards_[i].main.swap(image.shards_[i]);
  keys_.store(image.size_, std::memory_order_relaxed);
  image.size_ = old_keys;
  applied_.store(applied_sequence, std::memory_order_release);
  return status{};
}

store::snapshot_cursor::~snapshot_cursor() {
  for (auto i = shard_; i < store_shard_count; ++i) owner_.thaw(i);
  owner_.end_snapshot();
}

bool store::snapshot_cursor::next(record_ref& out) {
  // The frozen table of the current shard is read without its lock: nothing
  // modifies it until thaw(), which only this cursor calls.
  while (shard_ < store_shard_count) {
    const table& frozen = owner_.shards_[shard_].main;
    while (slot_ < frozen.slot_count()) {
      const table::node* n = frozen.node_at(slot_++);
      if (n == nullptr) continue;
      out = record_ref{n->key(), n->value(), n->expire_at_ms()};
      return true;
    }
    owner_.thaw(shard_);
    ++shard_;
    slot_ = 0;
  }
  return false;
}

}  // namespace walrus::kv
