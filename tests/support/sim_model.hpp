// What the deterministic simulation (tests/support/sim.hpp) knows to be true
// independently of the code under test: the primary's history, built from
// the appends the host saw succeed, and the checks that hold a replica's WAL
// and applied transactions against it. A check never aborts: it appends a
// sentence naming the replica, the sequence and what differs to `out`, so a
// failing seed reports every violation it found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/recording_machine.hpp"
#include "wal/log.hpp"

namespace walrus::testing {

struct sim_record {
  std::string payload;
  bool commit = false;
};

using sim_violations = std::vector<std::string>;

// Reads every record `log` holds from `from` on (up to its durable sequence).
inline status read_log(wal::log& log, uint64_t from, std::vector<sim_record>& out) {
  out.clear();
  if (from > log.last_sequence()) return status{};
  auto cursor = log.read_from(from);
  if (!cursor) return cursor.error();
  std::vector<wal::record_view> records;
  for (;;) {
    if (auto read = cursor->read(records); !read.ok()) return read;
    if (records.empty()) return status{};
    for (auto& r : records) out.push_back(sim_record{std::string{r.payload}, r.commit()});
  }
}

// The primary's history: record i is sequence i + 1.
class sim_history {
 public:
  // The host's append of `payloads` returned `range`.
  void appended(const wal::sequence_range& range, const std::vector<std::string>& payloads,
                sim_violations& out) {
    if (range.first != records_.size() + 1 || range.last - range.first + 1 != payloads.size()) {
      out.push_back("primary: append returned " + std::to_string(range.first) + ".." +
                    std::to_string(range.last) + " but the history ends at " +
                    std::to_string(records_.size()));
      return;
    }
    for (size_t i = 0; i < payloads.size(); ++i)
      records_.push_back(sim_record{payloads[i], i + 1 == payloads.size()});
    acked_last_ = range.last;
  }

  // The primary's WAL was reopened after a crash: every acknowledged append
  // must have survived unchanged; records beyond them (an append that failed
  // but reached the disk) are adopted, records it lost are forgotten.
  void reopened(wal::log& log, sim_violations& out) {
    auto last = log.last_sequence();
    if (last < acked_last_)
      out.push_back("primary: reopened WAL ends at " + std::to_string(last) +
                    " but appends through " + std::to_string(acked_last_) + " were acknowledged");
    std::vector<sim_record> found;
    auto first = std::max<uint64_t>(log.first_sequence(), 1);
    if (auto read = read_log(log, first, found); !read.ok()) {
      out.push_back("primary: reading the reopened WAL failed: " + read.to_string());
      return;
    }
    for (size_t i = 0; i < found.size(); ++i) {
      auto seq = first + i;
      if (seq <= records_.size()) {
        if (seq <= acked_last_ && !same(records_[seq - 1], found[i]))
          out.push_back("primary: sequence " + std::to_string(seq) + " changed across a restart: " +
                        describe(found[i]) + " instead of " + describe(records_[seq - 1]));
        records_[seq - 1] = found[i];
      } else {
        records_.push_back(found[i]);
      }
    }
    // Recovery made everything it kept durable: that is the history now.
    records_.resize(last);
    acked_last_ = last;
  }

  uint64_t last() const { return records_.size(); }
  uint64_t acked_last() const { return acked_last_; }
  const sim_record& at(uint64_t seq) const { return records_.at(seq - 1); }

  // Each applied transaction continues the last one and matches the
  // primary's entries and transaction boundaries.
  void check_applied(const std::string& who, const std::vector<recording_machine::applied_tx>& txs,
                     sim_violations& out) const {
    uint64_t next = 1;
    for (auto& tx : txs) {
      if (tx.first_sequence != next) {
        out.push_back(who + ": applied a transaction at " + std::to_string(tx.first_sequence) +
                      " after " + std::to_string(next - 1));
        return;
      }
      for (size_t k = 0; k < tx.entries.size(); ++k) {
        auto seq = next + k;
        bool commit = k + 1 == tx.entries.size();
        if (seq > records_.size()) {
          out.push_back(who + ": applied sequence " + std::to_string(seq) + " as " +
                        describe(sim_record{tx.entries[k], commit}) +
                        ", beyond the primary's history (" + std::to_string(records_.size()) + ")");
          return;
        }
        if (!same(records_[seq - 1], sim_record{tx.entries[k], commit})) {
          out.push_back(who + ": applied sequence " + std::to_string(seq) + " as " +
                        describe(sim_record{tx.entries[k], commit}) + ", the primary has " +
                        describe(records_[seq - 1]));
          return;
        }
      }
      next += tx.entries.size();
    }
  }

  // The replica's WAL is a prefix of the primary's history.
  void check_log(const std::string& who, wal::log& log, sim_violations& out) const {
    std::vector<sim_record> found;
    auto first = std::max<uint64_t>(log.first_sequence(), 1);
    if (auto read = read_log(log, first, found); !read.ok()) {
      out.push_back(who + ": reading its WAL failed: " + read.to_string());
      return;
    }
    for (size_t i = 0; i < found.size(); ++i) {
      auto seq = first + i;
      if (seq > records_.size()) {
        out.push_back(who + ": WAL holds sequence " + std::to_string(seq) +
                      " beyond the primary's history (" + std::to_string(records_.size()) + ")");
        return;
      }
      if (!same(records_[seq - 1], found[i])) {
        out.push_back(who + ": WAL sequence " + std::to_string(seq) + " is " + describe(found[i]) +
                      ", the primary has " + describe(records_[seq - 1]));
        return;
      }
    }
  }

 private:
  static bool same(const sim_record& a, const sim_record& b) {
    return a.commit == b.commit && a.payload == b.payload;
  }

  static std::string describe(const sim_record& r) {
    auto shown = r.payload.substr(0, 24);
    return "\"" + shown + (r.payload.size() > 24 ? "...\"" : "\"") +
           (r.commit ? " (commit)" : " (open)");
  }

  std::vector<sim_record> records_;
  uint64_t acked_last_ = 0;
};

}  // namespace walrus::testing
