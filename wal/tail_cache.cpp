#include "wal/tail_cache.hpp"

#include <cassert>

namespace walrus::wal {

tail_cache::tail_cache(size_t budget_bytes, size_t chunk_bytes)
    : budget_bytes_(budget_bytes), chunk_bytes_(chunk_bytes) {
  assert(chunk_bytes_ > 0);
}

std::shared_ptr<tail_cache::chunk> tail_cache::make_chunk() {
  if (spare_) return std::move(spare_);
  return std::make_shared<chunk>(chunk_bytes_);
}

char* tail_cache::reserve(size_t bytes, uint64_t first_sequence, uint64_t segment_first,
                          uint64_t file_offset) {
  reserved_ = false;
  if (budget_bytes_ == 0) return nullptr;
  if (bytes > chunk_bytes_) {
    clear();
    return nullptr;
  }
  std::lock_guard<std::mutex> guard{mu_};
  if (!chunks_.empty()) {
    auto& last = *chunks_.back();
    auto used = last.committed_bytes.load(std::memory_order_relaxed);
    bool contiguous = last.last_sequence() + 1 == first_sequence;
    bool same_place = last.segment_first == segment_first && last.file_offset + used == file_offset;
    if (contiguous && same_place && last.capacity - used >= bytes) {
      reserved_ = true;
      return last.data.get() + used;
    }
    if (!contiguous) chunks_.clear();
  }
  auto next = make_chunk();
  next->first_sequence = first_sequence;
  next->segment_first = segment_first;
  next->file_offset = file_offset;
  next->committed_bytes.store(0, std::memory_order_relaxed);
  next->committed_last.store(first_sequence - 1, std::memory_order_release);
  chunks_.push_back(next);
  while (chunks_.size() > 1 && chunks_.size() * chunk_bytes_ > budget_bytes_) {
    // Only the list holds it: nobody can take a new reference without mu_.
    if (chunks_.front().use_count() == 1) spare_ = std::move(chunks_.front());
    chunks_.pop_front();
  }
  reserved_ = true;
  return next->data.get();
}

void tail_cache::commit(size_t bytes, uint64_t last_sequence) {
  if (!reserved_) return;
  reserved_ = false;
  std::lock_guard<std::mutex> guard{mu_};
  assert(!chunks_.empty());
  auto& last = *chunks_.back();
  auto used = last.committed_bytes.load(std::memory_order_relaxed);
  assert(used + bytes <= last.capacity);
  assert(last_sequence > last.last_sequence());
  last.committed_bytes.store(used + bytes, std::memory_order_release);
  last.committed_last.store(last_sequence, std::memory_order_release);
}

void tail_cache::clear() {
  reserved_ = false;
  std::lock_guard<std::mutex> guard{mu_};
  chunks_.clear();
}

std::shared_ptr<const tail_cache::chunk> tail_cache::find(uint64_t sequence) const {
  std::lock_guard<std::mutex> guard{mu_};
  for (auto it = chunks_.rbegin(); it != chunks_.rend(); ++it) {
    const auto& c = **it;
    if (c.first_sequence > sequence) continue;
    if (sequence > c.last_sequence()) return nullptr;
    return *it;
  }
  return nullptr;
}

}  // namespace walrus::wal
