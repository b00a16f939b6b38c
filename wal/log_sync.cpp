// The durability half of wal::log: group commit, the interval syncer, the
// failed state and the commit hook.
#include <cassert>
#include <utility>

#include "wal/log.hpp"
#include "wal/segment_catalog.hpp"

namespace walrus::wal {

status log::sync() {
  uint64_t target = catalog_->last_sequence();
  auto st = sync_until(target, true);
  notify_hook();
  return st;
}

// Leader/follower group commit. Whoever finds no round running becomes the
// leader: it takes the active file and the last written sequence, syncs
// without holding any lock (appenders keep writing meanwhile), then publishes
// the new durable sequence. Followers wait for the round and return if it
// covered them, or lead the next round. N concurrent appenders therefore cost
// about two fdatasyncs, not N. With `force_round`, at least one round starts
// after the call (sync() must sync even when `none` calls everything durable).
status log::sync_until(uint64_t target, bool force_round) {
  std::unique_lock<std::mutex> lock{sync_mu_};
  bool own_round_done = false;
  for (;;) {
    // Records made durable before a failure stay acknowledged.
    if (catalog_->durable_sequence() >= target && (!force_round || own_round_done))
      return ok_status();
    if (failed()) return failure();
    if (sync_running_) {
      sync_cv_.wait(lock);
      continue;
    }
    sync_running_ = true;
    lock.unlock();
    status st = sync_round();
    lock.lock();
    sync_running_ = false;
    own_round_done = true;
    sync_cv_.notify_all();
    if (!st.ok()) return st;
  }
}

status log::sync_round() {
  std::shared_ptr<file> target_file;
  std::vector<unsynced_segment> sealed;
  bool sync_dir = false;
  uint64_t target_sequence = 0;
  {
    std::lock_guard<std::mutex> guard{write_mu_};
    if (failed()) return failure();
    // Other policies synced earlier segments when sealing them; under
    // `none` they are still pending.
    target_file = active_file_;
    target_sequence = last_written_;
    sealed.swap(unsynced_sealed_);
    sync_dir = std::exchange(dir_unsynced_, false);
  }
  for (const auto& segment : sealed) {
    stat_syncs_.fetch_add(1, std::memory_order_relaxed);
    if (auto st = segment.handle->sync(); !st.ok()) return fail(std::move(st));
  }
  if (sync_dir)
    if (auto st = fs_.sync_dir(options_.dir); !st.ok()) return fail(std::move(st));
  stat_syncs_.fetch_add(1, std::memory_order_relaxed);
  if (auto st = target_file->sync(); !st.ok()) return fail(std::move(st));
  catalog_->publish_durable(target_sequence);
  return ok_status();
}

status log::fail(status cause) {
  assert(!cause.ok());
  std::lock_guard<std::mutex> guard{failure_mu_};
  if (failure_.ok()) {
    failure_ = std::move(cause);
    failed_.store(true, std::memory_order_release);
  }
  return failure_;
}

status log::failure() const {
  std::lock_guard<std::mutex> guard{failure_mu_};
  assert(!failure_.ok());
  return failure_;
}

// Calls the hook one thread at a time without a lock: whoever sets
// `notifying_` delivers, and rechecks `notify_pending_` after letting go so
// an advance published meanwhile is never left unreported.
void log::notify_hook() {
  if (!has_hook_.load(std::memory_order_acquire)) return;
  notify_pending_.store(true, std::memory_order_seq_cst);
  while (notify_pending_.load(std::memory_order_seq_cst)) {
    if (notifying_.exchange(true, std::memory_order_acq_rel)) return;  // the holder delivers
    notify_pending_.store(false, std::memory_order_seq_cst);
    uint64_t durable = catalog_->durable_sequence();
    if (durable > last_notified_ && hook_) {
      last_notified_ = durable;
      hook_(durable);
    }
    notifying_.store(false, std::memory_order_release);
  }
}

void log::set_commit_hook(commit_hook hook) {
  // Take the delivery role so the hook is never swapped during a call.
  while (notifying_.exchange(true, std::memory_order_acq_rel)) std::this_thread::yield();
  hook_ = std::move(hook);
  last_notified_ = catalog_->durable_sequence();
  has_hook_.store(static_cast<bool>(hook_), std::memory_order_release);
  notifying_.store(false, std::memory_order_release);
}

void log::start_interval_thread() {
  assert(options_.sync.mode == sync_policy::kind::interval);
  assert(!interval_thread_.joinable());
  interval_thread_ = std::thread{[this] { interval_loop(); }};
}

void log::stop_interval_thread() {
  {
    std::lock_guard<std::mutex> guard{interval_mu_};
    interval_stop_ = true;
  }
  interval_cv_.notify_all();
  if (interval_thread_.joinable()) interval_thread_.join();
}

void log::interval_loop() {
  std::unique_lock<std::mutex> lock{interval_mu_};
  while (!interval_stop_) {
    interval_cv_.wait_for(lock, options_.sync.interval);
    if (interval_stop_) break;
    lock.unlock();
    uint64_t target = catalog_->last_sequence();
    bool keep_going = true;
    if (catalog_->durable_sequence() < target) {
      keep_going = sync_until(target, false).ok();  // a failure is the log's now
      notify_hook();
    }
    lock.lock();
    if (!keep_going) break;
  }
}

}  // namespace walrus::wal
