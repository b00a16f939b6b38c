#define CAF_SUITE snapshot
#include "caf/test/unit_test.hpp"

#include <cstring>

#include "actors/snapshot.hpp"
#include "tests/support/net_cluster.hpp"

using namespace walrus;
using namespace walrus::testing;
using namespace std::chrono_literals;

namespace {

using tx_list = std::vector<recording_machine::applied_tx>;

// A recording_machine's history as bytes: per transaction its first
// sequence, entry count, then each entry's length and bytes (all u64).
void put(std::string& out, uint64_t x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof(x));
}

std::string encode(const tx_list& txs) {
  std::string out;
  for (auto& tx : txs) {
    put(out, tx.first_sequence);
    put(out, tx.entries.size());
    for (auto& e : tx.entries) {
      put(out, e.size());
      out += e;
    }
  }
  return out;
}

bool decode(std::string_view in, tx_list& out) {
  auto get = [&](uint64_t& x) {
    if (in.size() < sizeof(x)) return false;
    std::memcpy(&x, in.data(), sizeof(x));
    in.remove_prefix(sizeof(x));
    return true;
  };
  while (!in.empty()) {
    recording_machine::applied_tx tx;
    uint64_t count = 0;
    if (!get(tx.first_sequence) || !get(count)) return false;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t size = 0;
      if (!get(size) || in.size() < size) return false;
      tx.entries.emplace_back(in.substr(0, size));
      in.remove_prefix(size);
    }
    out.push_back(std::move(tx));
  }
  return true;
}

class memory_reader : public snapshot_reader {
 public:
  memory_reader(std::string bytes, uint64_t sequence)
      : bytes_(std::move(bytes)), sequence_(sequence) {}
  uint64_t sequence() const override { return sequence_; }
  uint64_t size() const override { return bytes_.size(); }
  result<size_t> read(uint64_t offset, char* out, size_t max) override {
    auto n = std::min<size_t>(max, bytes_.size() - offset);
    std::memcpy(out, bytes_.data() + offset, n);
    return n;
  }

 private:
  std::string bytes_;
  uint64_t sequence_;
};

// The primary's snapshot: the first transactions written, up to `sequence`.
struct memory_source : snapshot_source {
  std::mutex mu;
  std::string bytes;
  uint64_t sequence = 0;
  int opened = 0;

  result<std::unique_ptr<snapshot_reader>> open_latest() override {
    std::lock_guard<std::mutex> guard{mu};
    if (sequence == 0) return status{errc::not_retained, "no snapshot yet"};
    ++opened;
    return std::unique_ptr<snapshot_reader>{new memory_reader(bytes, sequence)};
  }
};

// Installs into a recording_machine; counts what happened.
struct machine_sink : snapshot_sink {
  explicit machine_sink(std::shared_ptr<recording_machine> m) : machine(std::move(m)) {}
  std::shared_ptr<recording_machine> machine;
  std::string bytes;
  uint64_t sequence = 0;
  std::atomic<int> installs{0};
  std::atomic<int> aborts{0};

  status begin(uint64_t seq, uint64_t total) override {
    bytes.clear();
    bytes.reserve(total);
    sequence = seq;
    return status{};
  }
  status write(uint64_t offset, std::string_view data) override {
    if (offset != bytes.size()) return status{errc::protocol_violation, "offset"};
    bytes.append(data.data(), data.size());
    return status{};
  }
  status install() override {
    tx_list txs;
    if (!decode(bytes, txs)) return status{errc::malformed_frame, "bad test snapshot"};
    machine->restore(std::move(txs), sequence);
    ++installs;
    return status{};
  }
  void abort() override { ++aborts; }
};

struct fixture : net_cluster {
  std::shared_ptr<memory_source> source = std::make_shared<memory_source>();

  // Snapshot of everything written so far, then the WAL drops what it can.
  void snapshot_and_trim() {
    tx_list txs;
    uint64_t next = 1;
    for (auto& entries : written) {
      txs.push_back({next, entries});
      next += entries.size();
    }
    {
      std::lock_guard<std::mutex> guard{source->mu};
      source->bytes = encode(txs);
      source->sequence = next - 1;
    }
    CAF_REQUIRE(primary_log->drop_before(next).ok());
    CAF_REQUIRE_GREATER(primary_log->first_sequence(), 1u);
  }

  replica_status status_of(net_replica& r) {
    return ask<replica_status>(r.node->sys, r.handle, status_atom_v);
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(snapshot_tests, fixture)

CAF_TEST(a new replica whose start is no longer retained bootstraps from a snapshot) {
  start_primary(std::nullopt, source);
  write_many(400);
  snapshot_and_trim();
  auto snapshot_sequence = source->sequence;
  write_many(100);  // after the snapshot: streamed as batches
  auto machine = std::make_shared<recording_machine>();
  auto sink = std::make_shared<machine_sink>(machine);
  auto& r = add_replica(std::nullopt, sink, machine);
  CAF_REQUIRE(converge());
  check_identical();
  CAF_CHECK_EQUAL(sink->installs.load(), 1);
  auto st = status_of(r);
  CAF_CHECK_EQUAL(st.snapshot.installed, 1u);
  CAF_CHECK_EQUAL(st.snapshot.sequence, snapshot_sequence);
  CAF_CHECK_EQUAL(st.snapshot.received_bytes, st.snapshot.total_bytes);
  // The replica's WAL starts right after the snapshot.
  CAF_CHECK_EQUAL(r.log->first_sequence(), snapshot_sequence + 1);
  bool bootstrapped = false;
  for (auto& t : st.transitions) bootstrapped |= t.to == replica_state::bootstrapping;
  CAF_CHECK(bootstrapped);
  // It keeps streaming afterwards, and a reconnect resumes from its WAL.
  write_many(50);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(a replica without a snapshot sink is refused with not_retained) {
  start_primary(std::nullopt, source);
  write_many(400);
  snapshot_and_trim();
  auto& r = add_replica();
  CAF_CHECK(eventually(
      [&] { return status_of(r).last_error.find("cannot take a snapshot") != std::string::npos; }));
  CAF_CHECK_EQUAL(r.machine->applied_sequence(), 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
