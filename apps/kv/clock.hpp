// The wall clock of walrus-kv, injectable. Expiry times are absolute
// milliseconds since the Unix epoch: the primary turns EX/PX into one and
// logs it, every node compares it with its own clock when a key is read.
// Tests drive a manual_clock instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace walrus::kv {

class clock {
 public:
  virtual ~clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t now_ms() const = 0;
};

class system_clock final : public clock {
 public:
  int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock_type::now().time_since_epoch()).count();
  }

 private:
  using system_clock_type = std::chrono::system_clock;
};

// A clock that moves only when told to (tests, deterministic simulation).
class manual_clock final : public clock {
 public:
  explicit manual_clock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(std::memory_order_relaxed); }
  void advance_ms(int64_t delta_ms) { now_.fetch_add(delta_ms, std::memory_order_relaxed); }
  void set_ms(int64_t now_ms) { now_.store(now_ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace walrus::kv
