// Bridges the WAL's commit hook, a plain callback that runs on appender
// threads, to actors: subscribers get `(wake_atom, durable_sequence)` when the
// log's durable sequence advances. Wake-ups are coalesced: after one wake a
// subscriber gets no other until it re-arms, so a burst of appends costs one
// message, however many appends there were. A subscriber re-arms, then
// re-checks the log, so no advance is ever missed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "caf/actor.hpp"

namespace walrus {

// Create with std::make_shared: subscriptions keep the watch alive.
class durable_watch : public std::enable_shared_from_this<durable_watch> {
 public:
  class subscription;

  // Called by the WAL's commit hook.
  void notify(uint64_t durable_sequence);

  // `who` must accept (wake_atom, uint64_t). Starts armed.
  std::unique_ptr<subscription> subscribe(caf::actor who);

  uint64_t notified_sequence() const noexcept { return last_.load(std::memory_order_acquire); }

 private:
  struct subscriber {
    caf::actor who;
    std::shared_ptr<std::atomic<bool>> armed;
  };
  void remove(const std::shared_ptr<std::atomic<bool>>& armed);

  std::mutex mutex_;
  std::vector<subscriber> subscribers_;
  std::atomic<uint64_t> last_{0};
};

// Held in the subscriber's state; unsubscribes when destroyed.
class durable_watch::subscription {
 public:
  subscription(std::shared_ptr<durable_watch> watch, std::shared_ptr<std::atomic<bool>> armed)
      : watch_(std::move(watch)), armed_(std::move(armed)) {}
  ~subscription() { watch_->remove(armed_); }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;

  // Asks for the next wake-up. Re-check the log afterwards.
  void arm() noexcept { armed_->store(true, std::memory_order_release); }

 private:
  std::shared_ptr<durable_watch> watch_;
  std::shared_ptr<std::atomic<bool>> armed_;
};

}  // namespace walrus
