#include "actors/durable_watch.hpp"

#include <algorithm>

#include "caf/send.hpp"
#include "messages/type_ids.hpp"

namespace walrus {

void durable_watch::notify(uint64_t durable_sequence) {
  auto prev = last_.load(std::memory_order_relaxed);
  while (prev < durable_sequence &&
         !last_.compare_exchange_weak(prev, durable_sequence, std::memory_order_acq_rel)) {
  }
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& s : subscribers_)
    if (s.armed->exchange(false, std::memory_order_acq_rel))
      caf::anon_send(s.who, wake_atom_v, durable_sequence);
}

std::unique_ptr<durable_watch::subscription> durable_watch::subscribe(caf::actor who) {
  auto armed = std::make_shared<std::atomic<bool>>(true);
  {
    std::lock_guard<std::mutex> guard{mutex_};
    subscribers_.push_back(subscriber{std::move(who), armed});
  }
  return std::make_unique<subscription>(shared_from_this(), std::move(armed));
}

void durable_watch::remove(const std::shared_ptr<std::atomic<bool>>& armed) {
  std::lock_guard<std::mutex> guard{mutex_};
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [&](const subscriber& s) { return s.armed == armed; }),
                     subscribers_.end());
}

}  // namespace walrus
