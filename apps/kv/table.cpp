#include "apps/kv/table.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace walrus::kv {

namespace {

constexpr size_t initial_slot_count = 16;
static_assert((initial_slot_count & (initial_slot_count - 1)) == 0, "a power of two");

// A capacity above this is given back when a value under a quarter of it
// is written, so one big value does not pin its memory to the key forever.
constexpr size_t shrink_above_bytes = 256;

// The node's allocation, rounded so that the allocator's chunk has no
// unused tail: glibc's malloc hands out 16-byte granules with an 8-byte
// header, so a request of 16 k + 8 bytes uses its chunk whole. The slack
// becomes value capacity (room for a slightly longer value later).
size_t allocation_bytes(size_t needed) noexcept {
  return ((needed + 8 + 15) & ~size_t{15}) - 8;
}

}  // namespace

namespace detail {

uint64_t make_hash_seed() noexcept {
  uint64_t seed = 0;
  try {
    std::random_device device;
    seed = (uint64_t{device()} << 32) ^ device();
  } catch (...) {
    // No entropy source: the address of a local and the clock still vary.
    seed = reinterpret_cast<uintptr_t>(&seed) ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return fold_multiply(seed ^ hash_secret2, hash_secret1);
}

}  // namespace detail

void table::node_deleter::operator()(node* n) const noexcept {
  free_node(n);
}

table::~table() {
  clear();
}

table::table(table&& other) noexcept
    : slots_(std::exchange(other.slots_, nullptr)),
      mask_(std::exchange(other.mask_, 0)),
      size_(std::exchange(other.size_, 0)),
      grow_at_(std::exchange(other.grow_at_, 0)),
      hash_(other.hash_) {
  publish_hint();
  other.publish_hint();
}

table& table::operator=(table&& other) noexcept {
  if (this != &other) {
    clear();
    swap(other);
  }
  return *this;
}

void table::swap(table& other) noexcept {
  std::swap(slots_, other.slots_);
  std::swap(mask_, other.mask_);
  std::swap(size_, other.size_);
  std::swap(grow_at_, other.grow_at_);
  std::swap(hash_, other.hash_);
  publish_hint();
  other.publish_hint();
}

table::node* table::make_node(std::string_view key, std::string_view value, size_t value_capacity) {
  if (key.size() > max_bytes || value.size() > max_bytes)
    throw std::length_error("kv table: a key or value of " +
                            std::to_string(std::max(key.size(), value.size())) +
                            " bytes is above the limit of " + std::to_string(max_bytes));
  assert(value_capacity >= value.size());
  size_t bytes = allocation_bytes(sizeof(node) + key.size() + value_capacity);
  value_capacity = std::min(bytes - sizeof(node) - key.size(), max_bytes);
  auto* n = new (::operator new(bytes)) node;
  n->key_size_ = static_cast<uint32_t>(key.size());
  n->value_capacity_ = static_cast<uint32_t>(value_capacity);
  if (!key.empty()) std::memcpy(n->bytes(), key.data(), key.size());
  return n;
}

void table::free_node(node* n) noexcept {
  if (n == nullptr) return;
  n->~node();
  ::operator delete(n);
}

bool table::fits(const node& n, size_t value_size) noexcept {
  size_t capacity = n.value_capacity_;
  return value_size <= capacity && (capacity <= shrink_above_bytes || value_size >= capacity / 4);
}

void table::write_value(node& n, std::string_view value, int64_t expire_at_ms,
                        uint32_t flags) noexcept {
  assert(value.size() <= n.value_capacity_);
  // memmove: the value may be a view of this very node.
  if (!value.empty()) std::memmove(n.bytes() + n.key_size_, value.data(), value.size());
  n.value_size_ = static_cast<uint32_t>(value.size());
  n.expire_at_ms_ = expire_at_ms;
  n.flags_ = flags;
}

const table::node* table::find(std::string_view key, uint64_t hash) const noexcept {
  if (slots_ == nullptr) return nullptr;
  return slots_[probe(key, hash)].item;
}

size_t table::probe(std::string_view key, uint64_t hash) const noexcept {
  assert(slots_ != nullptr && size_ <= mask_);
  // Ends: the load stays below 1, so an empty slot comes.
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const slot& s = slots_[i];
    if (s.item == nullptr || (s.hash == hash && s.item->key() == key)) return i;
  }
}

bool table::put(std::string_view key, uint64_t hash, std::string_view value, int64_t expire_at_ms,
                uint32_t flags) {
  size_t i = 0;
  if (slots_ != nullptr) {
    i = probe(key, hash);
    if (node* n = slots_[i].item) {
      if (fits(*n, value.size())) {
        write_value(*n, value, expire_at_ms, flags);
        return false;
      }
      // A growing value gets headroom, so a key that keeps growing does not
      // reallocate on every write.
      size_t capacity = n->value_capacity_;
      if (value.size() > capacity)
        capacity = std::max(value.size(), std::min(capacity + capacity / 2, max_bytes));
      else
        capacity = value.size();
      node* fresh = make_node(key, value, capacity);  // throws: nothing changed
      write_value(*fresh, value, expire_at_ms, flags);
      slots_[i].item = fresh;
      free_node(n);
      return false;
    }
  }
  node_ptr fresh{make_node(key, value, value.size())};
  write_value(*fresh, value, expire_at_ms, flags);
  if (slots_ == nullptr || size_ + 1 > grow_at_) {
    reserve_one_more();
    place(hash, fresh.release());
  } else {
    assert(slots_[i].item == nullptr);
    slots_[i] = slot{hash, fresh.release()};
  }
  ++size_;
  return true;
}

bool table::erase(std::string_view key, uint64_t hash) noexcept {
  if (slots_ == nullptr) return false;
  size_t hole = probe(key, hash);
  if (slots_[hole].item == nullptr) return false;
  free_node(slots_[hole].item);
  // Backward shift: an entry after the hole moves into it when its probe
  // start is not in (hole, its slot], i.e. the hole lies on its probe path.
  for (size_t j = (hole + 1) & mask_; slots_[j].item != nullptr; j = (j + 1) & mask_) {
    size_t home = slots_[j].hash & mask_;
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = slot{0, nullptr};
  assert(size_ > 0);
  --size_;
  return true;
}

void table::clear() noexcept {
  for (size_t i = 0; i < slot_count(); ++i) free_node(slots_[i].item);
  size_ = 0;
  free_slots();
}

bool table::adopt(uint64_t hash, node_ptr n) {
  assert(n != nullptr && hash == hash_(n->key()));
  if (slots_ != nullptr) {
    size_t i = probe(n->key(), hash);
    if (node* old = slots_[i].item) {
      slots_[i].item = n.release();
      free_node(old);
      return false;
    }
  }
  reserve_one_more();
  place(hash, n.release());
  ++size_;
  return true;
}

void table::reserve(size_t count) {
  size_t slots = slots_ == nullptr ? initial_slot_count : mask_ + 1;
  while (slots / 4 * 3 < count) slots *= 2;
  if (slots_ == nullptr || slots > mask_ + 1) rehash(slots);
}

void table::reserve_one_more() {
  if (slots_ == nullptr)
    rehash(initial_slot_count);
  else if (size_ + 1 > grow_at_)
    rehash(2 * (mask_ + 1));
  assert(size_ + 1 <= grow_at_);
}

void table::rehash(size_t new_slot_count) {
  assert((new_slot_count & (new_slot_count - 1)) == 0 && new_slot_count > size_);
  auto* fresh = static_cast<slot*>(std::calloc(new_slot_count, sizeof(slot)));
  if (fresh == nullptr) throw std::bad_alloc{};
  slot* old = std::exchange(slots_, fresh);
  size_t old_count = old == nullptr ? 0 : mask_ + 1;
  mask_ = new_slot_count - 1;
  grow_at_ = new_slot_count / 4 * 3;
  for (size_t i = 0; i < old_count; ++i)
    if (old[i].item != nullptr) place(old[i].hash, old[i].item);
  publish_hint();
  std::free(old);
}

void table::place(uint64_t hash, node* n) noexcept {
  size_t i = hash & mask_;
  while (slots_[i].item != nullptr) i = (i + 1) & mask_;
  slots_[i] = slot{hash, n};
}

void table::free_slots() noexcept {
  assert(size_ == 0);
  std::free(slots_);
  slots_ = nullptr;
  mask_ = 0;
  grow_at_ = 0;
  publish_hint();
}

}  // namespace walrus::kv
