#define CAF_SUITE kv_snapshot
#include "caf/test/unit_test.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "apps/kv/snapshot.hpp"
#include "apps/kv/snapshots.hpp"
#include "base/crc32c.hpp"

using namespace walrus;
using namespace walrus::kv;
using namespace std::string_literals;

namespace {

status commit(store& db, const std::function<void(op_batch&)>& fill) {
  op_batch batch;
  fill(batch);
  transaction tx;
  batch.to_transaction(db.applied_sequence() + 1, tx);
  return db.apply(tx);
}

// Binary keys, empty values, expiries, and values larger than a block.
void populate(store& db, int keys) {
  for (int i = 0; i < keys; ++i)
    CAF_REQUIRE(commit(db, [&](op_batch& b) {
                  auto key = "key\0:"s + std::to_string(i);
                  auto value = i % 7 == 0 ? std::string{} : std::string(i % 300, 'a' + i % 26);
                  b.add_set(key, value, i % 3 == 0 ? 1'700'000'000'000 + i : 0);
                }).ok());
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("big", std::string(200000, 'B'), 0); }).ok());
}

// The whole snapshot as the writer's chunks.
std::vector<std::string> chunks_of(store& db, snapshot_options opts = {}) {
  auto writer = snapshot_writer::open(db, opts);
  CAF_REQUIRE(writer.ok());
  std::vector<std::string> out;
  for (;;) {
    std::string chunk;
    auto more = (*writer)->next_chunk(chunk);
    CAF_REQUIRE(more.ok());
    if (!*more) break;
    out.push_back(std::move(chunk));
  }
  return out;
}

std::string bytes_of(store& db, snapshot_options opts = {}) {
  std::string out;
  for (auto& c : chunks_of(db, opts)) out += c;
  return out;
}

// Loads `bytes` into `db` as one network transfer cut into `piece` bytes.
result<snapshot_info> load(std::string_view bytes, store& db, size_t piece = 1 << 20) {
  snapshot_loader loader;
  for (size_t at = 0; at < bytes.size(); at += piece)
    if (auto st = loader.add(at, bytes.substr(at, piece)); !st.ok()) return st;
  return loader.finish(db);
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char name[] = "/tmp/walrus-kv-snapshot-XXXXXX";
    CAF_REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~temp_dir() {
    int rc = std::system(("rm -rf " + path).c_str());
    (void)rc;
  }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

// A small store whose snapshot is cheap to damage at every byte.
void populate_small(store& db) {
  CAF_REQUIRE(commit(db, [](op_batch& b) {
                b.add_set("alpha", "1", 0), b.add_set("beta", "two", 1'700'000'000'000),
                    b.add_set("", "empty key", 0);
              }).ok());
}

}  // namespace

CAF_TEST(a snapshot round trips content sequence and digest) {
  store source;
  populate(source, 2000);
  auto bytes = bytes_of(source);
  store target;
  auto info = load(bytes, target);
  CAF_REQUIRE(info.ok());
  CAF_CHECK_EQUAL(info->sequence, source.applied_sequence());
  CAF_CHECK_EQUAL(info->records, source.dbsize());
  CAF_CHECK_EQUAL(info->bytes, bytes.size());
  CAF_CHECK(target.dump() == source.dump());
  CAF_CHECK(target.digest() == source.digest());
  // An empty store too.
  store empty;
  store target2;
  CAF_REQUIRE(commit(target2, [](op_batch& b) { b.add_set("stale", "x", 0); }).ok());
  CAF_REQUIRE(load(bytes_of(empty), target2).ok());
  CAF_CHECK_EQUAL(target2.dbsize(), 0u);
  CAF_CHECK_EQUAL(target2.applied_sequence(), 0u);
}

CAF_TEST(a chunked transfer round trips at any chunk size and checks size and crc) {
  store source;
  populate(source, 300);
  auto chunks = chunks_of(source, snapshot_options{4096});
  CAF_CHECK(chunks.size() > 10u);
  std::string whole;
  for (auto& c : chunks) whole += c;
  for (size_t piece : {1, 7, 4096, 100000}) {
    store target;
    CAF_REQUIRE(load(whole, target, piece).ok());
    CAF_CHECK(target.digest() == source.digest());
  }
  auto crc = crc32c::value(whole);
  snapshot_loader loader;
  uint64_t offset = 0;
  for (auto& c : chunks) {
    CAF_REQUIRE(loader.add(offset, c).ok());
    offset += c.size();
  }
  store target;
  CAF_CHECK(loader.finish(whole.size() + 1, crc, target).error().code() == errc::corruption);
  snapshot_loader again;
  CAF_REQUIRE(again.add(0, whole).ok());
  CAF_CHECK(again.finish(whole.size(), crc ^ 1, target).error().code() == errc::checksum_mismatch);
  CAF_CHECK_EQUAL(target.dbsize(), 0u);
  snapshot_loader third;
  CAF_REQUIRE(third.add(0, whole).ok());
  auto info = third.finish(whole.size(), crc, target);
  CAF_REQUIRE(info.ok());
  CAF_CHECK_EQUAL(info->crc32c, crc);
  CAF_CHECK(target.digest() == source.digest());
}

CAF_TEST(a corrupted or misplaced chunk is refused and the store is untouched) {
  store source;
  populate(source, 300);
  auto chunks = chunks_of(source, snapshot_options{4096});
  store target;
  CAF_REQUIRE(commit(target, [](op_batch& b) { b.add_set("mine", "1", 0); }).ok());
  auto before = target.digest();
  for (size_t bad = 0; bad < chunks.size(); ++bad) {
    snapshot_loader loader;
    uint64_t offset = 0;
    status failed;
    for (size_t i = 0; i < chunks.size() && failed.ok(); ++i) {
      auto chunk = chunks[i];
      if (i == bad) chunk[chunk.size() / 2] ^= 0x20;
      failed = loader.add(offset, chunk);
      offset += chunk.size();
    }
    if (failed.ok()) failed = loader.finish(target).error();
    CAF_CHECK(!failed.ok());
  }
  snapshot_loader loader;
  CAF_REQUIRE(loader.add(0, chunks[0]).ok());
  CAF_CHECK(loader.add(0, chunks[1]).code() == errc::protocol_violation);
  CAF_CHECK(target.digest() == before);
}

CAF_TEST(damage at every byte is an error never a crash nor a partial install) {
  store source;
  populate_small(source);
  auto bytes = bytes_of(source);
  CAF_REQUIRE(bytes.size() < 200u);
  store target;
  CAF_REQUIRE(commit(target, [](op_batch& b) { b.add_set("mine", "1", 0); }).ok());
  auto before = target.digest();
  for (size_t i = 0; i < bytes.size(); ++i)
    for (uint8_t flip : {0x01, 0x80, 0xFF}) {
      auto damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ flip);
      auto loaded = load(damaged, target, 1 + i % 5);
      if (loaded.ok()) CAF_FAIL("byte " << i << " flipped by " << int{flip} << " loaded");
    }
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto loaded = load(std::string_view{bytes}.substr(0, n), target);
    CAF_REQUIRE(!loaded.ok());
    CAF_CHECK(loaded.error().message().find("offset") != std::string::npos);
  }
  CAF_CHECK(load(bytes + "x", target).error().message().find("after the trailer") !=
            std::string::npos);
  CAF_CHECK(target.digest() == before);
}

CAF_TEST(version magic and unknown blocks are checked) {
  store source;
  populate_small(source);
  auto bytes = bytes_of(source);
  store target;
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  CAF_CHECK(load(bad_magic, target).error().message().find("bad magic") != std::string::npos);
  // Version 2 with a valid header CRC.
  auto v2 = bytes;
  v2[8] = 2;
  auto crc = crc32c::value(v2.data(), 24);
  for (int i = 0; i < 4; ++i) v2[24 + i] = static_cast<char>(crc >> (8 * i));
  CAF_CHECK(load(v2, target).error().code() == errc::version_mismatch);
  // A block type this version does not know, inserted after the header.
  auto with_block = [&](uint8_t type) {
    std::string block = "\0\0\0\0\x03\0\0\0"s + static_cast<char>(type) + "abc";
    auto block_crc = crc32c::value(block.data() + 4, block.size() - 4);
    for (int i = 0; i < 4; ++i) block[i] = static_cast<char>(block_crc >> (8 * i));
    return bytes.substr(0, 28) + block + bytes.substr(28);
  };
  CAF_CHECK(load(with_block(0x81), target).ok());  // ignorable
  CAF_CHECK(target.digest() == source.digest());
  CAF_CHECK(load(with_block(0x05), target).error().code() == errc::unknown_frame);
}

CAF_TEST(a record above the block limit fails the writer not the reader) {
  store db;
  CAF_REQUIRE(commit(db, [](op_batch& b) { b.add_set("k", std::string(5000, 'v'), 0); }).ok());
  snapshot_options opts;
  opts.block_bytes = 1024;
  opts.max_block_bytes = 4096;
  auto writer = snapshot_writer::open(db, opts);
  CAF_REQUIRE(writer.ok());
  std::string chunk;
  auto more = (*writer)->next_chunk(chunk);
  CAF_CHECK(more.error().code() == errc::size_limit_exceeded);
}

CAF_TEST(a snapshot taken while another thread applies is the state at its sequence) {
  // Transaction i sets key (i % 997) to i: the state at S is known from S.
  constexpr uint64_t keys = 997;
  store db;
  auto tx_for = [](uint64_t i) {
    return [i](op_batch& b) { b.add_set("k" + std::to_string(i % keys), std::to_string(i), 0); };
  };
  for (uint64_t i = 1; i <= keys; ++i) CAF_REQUIRE(commit(db, tx_for(i)).ok());
  std::atomic<bool> done{false};
  std::atomic<bool> writer_failed{false};
  std::thread writer_thread{[&] {
    for (uint64_t i = keys + 1; !done.load(); ++i)
      if (!commit(db, tx_for(i)).ok()) {
        writer_failed = true;
        return;
      }
  }};
  std::vector<std::string> snapshots;
  // Each snapshot waits until the writer applied something after the
  // previous one was taken, so every snapshot has a sequence of its own
  // whatever the scheduler does. Without this, a writer descheduled while
  // this loop took its snapshots, then running to 20 * keys in one go before
  // the loop checked again, left every snapshot at the same sequence.
  uint64_t last = 0;  // applied sequence once the previous snapshot was taken
  while (snapshots.size() < 20 || db.applied_sequence() < 20 * keys) {
    while (db.applied_sequence() == last && !writer_failed.load()) std::this_thread::yield();
    if (writer_failed.load()) break;
    snapshots.push_back(bytes_of(db, snapshot_options{256}));
    last = db.applied_sequence();
  }
  done = true;
  writer_thread.join();
  CAF_REQUIRE(!writer_failed.load());
  std::set<uint64_t> sequences;
  for (auto& bytes : snapshots) {
    store loaded;
    CAF_REQUIRE(load(bytes, loaded).ok());
    auto s = loaded.applied_sequence();
    sequences.insert(s);
    store expected;
    for (uint64_t i = s - keys + 1; i <= s; ++i)  // the last `keys` decide every key
      CAF_REQUIRE(commit(expected, tx_for(i)).ok());
    if (!(loaded.dump() == expected.dump())) CAF_FAIL("snapshot at " << s << " is not that state");
  }
  CAF_CHECK(sequences.size() > 1u);  // the writer did run between snapshots
  CAF_CHECK_EQUAL(sequences.size(), snapshots.size());
}

CAF_TEST(snapshot files are written atomically and errors name file and offset) {
  temp_dir dir;
  auto path = dir.path + "/state.snapshot";
  store source;
  populate(source, 500);
  auto written = write_snapshot_file(source, path);
  CAF_REQUIRE(written.ok());
  CAF_CHECK_EQUAL(::access((path + ".tmp").c_str(), F_OK), -1);
  store target;
  auto loaded = load_snapshot_file(path, target);
  CAF_REQUIRE(loaded.ok());
  CAF_CHECK(target.digest() == source.digest());
  CAF_CHECK_EQUAL(loaded->crc32c, written->crc32c);

  auto bytes = read_bytes(path);
  write_bytes(path, bytes.substr(0, bytes.size() / 2));
  store other;
  auto truncated = load_snapshot_file(path, other);
  CAF_REQUIRE(!truncated.ok());
  CAF_CHECK(truncated.error().message().find(path + " offset") != std::string::npos);
  CAF_CHECK(truncated.error().message().find("truncated") != std::string::npos);
  bytes[bytes.size() / 3] ^= 0x10;
  write_bytes(path, bytes);
  auto corrupt = load_snapshot_file(path, other);
  CAF_REQUIRE(!corrupt.ok());
  CAF_CHECK(corrupt.error().code() == errc::checksum_mismatch);
  CAF_CHECK(corrupt.error().message().find(path) != std::string::npos);
  CAF_CHECK_EQUAL(other.dbsize(), 0u);
  auto missing = load_snapshot_file(dir.path + "/none", other);
  CAF_CHECK(missing.error().code() == errc::io_error);
  auto unwritable = write_snapshot_file(source, dir.path + "/no/such/dir/file");
  CAF_CHECK(unwritable.error().code() == errc::io_error);
}

CAF_TEST(a snapshot of a store ahead of the WAL waits until the WAL holds it) {
  // walrus-kv's primary applies a round's writes before it writes them to
  // the WAL: a snapshot published before the WAL has its sequence could
  // outlive the WAL's copy (a crash), and a restart would then number new
  // writes with sequences the snapshot already holds.
  temp_dir dir;
  wal::options opts;
  opts.dir = dir.path + "/wal";
  opts.sync = wal::sync_policy::group();
  auto opened = wal::log::open(opts);
  CAF_REQUIRE(opened.ok());
  std::shared_ptr<wal::log> log{std::move(*opened)};
  auto db = std::make_shared<store>();
  std::vector<op_batch> batches(3);
  for (size_t i = 0; i < batches.size(); ++i) {
    batches[i].add_set("k" + std::to_string(i), "v", 0);
    transaction tx;
    batches[i].to_transaction(i + 1, tx);
    CAF_REQUIRE(db->apply(tx).ok());
  }
  CAF_REQUIRE(log->append(batches[0].entries()).ok());  // the WAL has 1 of 3
  snapshotter::config cfg;
  cfg.db = db;
  cfg.log = log;
  cfg.dir = dir.path + "/snapshots";
  snapshotter snapshots{cfg};
  std::atomic<bool> saved{false};
  std::optional<result<snapshot_info>> outcome;
  std::thread saver{[&] {
    outcome = snapshots.save();
    saved = true;
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CAF_CHECK(!saved);  // not while the WAL lacks sequences 2 and 3
  CAF_REQUIRE(log->append(batches[1].entries()).ok());
  CAF_REQUIRE(log->append(batches[2].entries()).ok());
  saver.join();
  CAF_REQUIRE(outcome && outcome->ok());
  CAF_CHECK_EQUAL((*outcome)->sequence, 3u);
  CAF_CHECK_GREATER_OR_EQUAL(log->durable_sequence(), 3u);
}
