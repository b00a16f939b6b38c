// A state machine for tests: it keeps every transaction it applied and
// refuses anything that breaks the applier's contract (a transaction that
// does not start right after the last one: a duplicate or a gap).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "actors/state_machine.hpp"

namespace walrus::testing {

class recording_machine : public state_machine {
 public:
  struct applied_tx {
    uint64_t first_sequence;
    std::vector<std::string> entries;
  };

  status apply(const transaction& tx) override {
    std::lock_guard<std::mutex> guard{mutex_};
    if (tx.entries.empty())
      return status{errc::invalid_argument,
                    "empty transaction at " + std::to_string(tx.first_sequence)};
    if (tx.first_sequence != applied_ + 1) {
      ++violations_;
      return status{errc::sequence_gap, "transaction at " + std::to_string(tx.first_sequence) +
                                            " after applied " + std::to_string(applied_)};
    }
    applied_tx copy{tx.first_sequence, {}};
    for (auto e : tx.entries) copy.entries.emplace_back(e);
    log_.push_back(std::move(copy));
    applied_ = tx.last_sequence();
    return status{};
  }

  uint64_t applied_sequence() const override {
    std::lock_guard<std::mutex> guard{mutex_};
    return applied_;
  }

  // Transactions refused for arriving twice or out of order: always 0 for a
  // correct applier.
  uint64_t violations() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return violations_;
  }

  std::vector<applied_tx> transactions() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return log_;
  }

  // Replaces everything (a snapshot installed): `txs` end at `applied`.
  void restore(std::vector<applied_tx> txs, uint64_t applied) {
    std::lock_guard<std::mutex> guard{mutex_};
    log_ = std::move(txs);
    applied_ = applied;
  }

  // All payloads in order.
  std::vector<std::string> entries() const {
    std::lock_guard<std::mutex> guard{mutex_};
    std::vector<std::string> out;
    for (auto& tx : log_) out.insert(out.end(), tx.entries.begin(), tx.entries.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  uint64_t applied_ = 0;
  uint64_t violations_ = 0;
  std::vector<applied_tx> log_;
};

}  // namespace walrus::testing
