#include "apps/kv/snapshots.hpp"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/kv/snapshot.hpp"
#include "base/clock.hpp"

namespace walrus::kv {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view file_prefix = "snapshot-";
constexpr std::string_view file_suffix = ".wkv";

std::optional<uint64_t> parse_name(const std::string& name) {
  if (name.size() != file_prefix.size() + 20 + file_suffix.size() ||
      name.compare(0, file_prefix.size(), file_prefix) != 0 ||
      name.compare(name.size() - file_suffix.size(), file_suffix.size(), file_suffix) != 0)
    return std::nullopt;
  uint64_t out = 0;
  for (size_t i = file_prefix.size(); i < file_prefix.size() + 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    out = out * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return out;
}

status io_failure(const std::string& what, const std::error_code& ec) {
  return status{errc::io_error, what + ": " + ec.message()};
}

}  // namespace

// -- snapshot_folder --------------------------------------------------------------

status snapshot_folder::create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return io_failure("cannot create the snapshot folder " + dir_, ec);
  return status{};
}

result<std::optional<snapshot_folder::entry>> snapshot_folder::newest() const {
  std::error_code ec;
  std::optional<entry> best;
  for (fs::directory_iterator it{dir_, ec}, end; !ec && it != end; it.increment(ec)) {
    auto sequence = parse_name(it->path().filename().string());
    if (sequence && (!best || *sequence > best->sequence))
      best = entry{it->path().string(), *sequence};
  }
  if (ec) return io_failure("cannot list the snapshot folder " + dir_, ec);
  return best;
}

std::string snapshot_folder::path_for(uint64_t sequence) const {
  char name[64];
  std::snprintf(name, sizeof(name), "snapshot-%020" PRIu64 ".wkv", sequence);
  return (fs::path{dir_} / name).string();
}

void snapshot_folder::remove_older_than(uint64_t sequence) const {
  std::error_code ec;
  for (fs::directory_iterator it{dir_, ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    auto parsed = parse_name(name);
    bool stale_temp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
                      parse_name(name.substr(0, name.size() - 4)).value_or(UINT64_MAX) < sequence;
    std::error_code ignored;
    if ((parsed && *parsed < sequence) || stale_temp) fs::remove(it->path(), ignored);
  }
}

result<uint64_t> load_newest_snapshot(const snapshot_folder& folder, store& db, wal::log& log) {
  if (auto st = folder.create(); !st.ok()) return st;
  auto newest = folder.newest();
  if (!newest) return newest.error();
  uint64_t sequence = 0;
  if (*newest) {
    auto loaded = load_snapshot_file((*newest)->path, db);
    if (!loaded) return loaded.error();
    sequence = loaded->sequence;
  }
  log.protect_from(sequence + 1);
  return sequence;
}

// -- snapshotter ------------------------------------------------------------------

snapshotter::snapshotter(config cfg) : cfg_(std::move(cfg)), folder_(cfg_.dir) {
  stats_.last_sequence = cfg_.loaded_sequence;
}

snapshotter::~snapshotter() {
  stop();
}

void snapshotter::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void snapshotter::stop() {
  {
    std::lock_guard<std::mutex> guard{mu_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool snapshotter::request() {
  std::lock_guard<std::mutex> guard{mu_};
  if (stats_.in_progress || requested_) return false;
  requested_ = true;
  cv_.notify_all();
  return true;
}

snapshot_stats snapshotter::stats() const {
  std::lock_guard<std::mutex> guard{mu_};
  return stats_;
}

status snapshotter::wait_until_durable(uint64_t sequence) {
  auto& log = *cfg_.log;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (log.last_sequence() < sequence) {
    if (auto health = log.health(); !health.ok()) return health;
    if (std::chrono::steady_clock::now() > deadline)
      return status{errc::timeout, "the WAL did not reach the snapshot's sequence " +
                                       std::to_string(sequence) + " within 30 s"};
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return log.durable_sequence() >= sequence ? ok_status() : log.sync();
}

result<snapshot_info> snapshotter::save() {
  std::lock_guard<std::mutex> one_at_a_time{save_mu_};
  {
    std::lock_guard<std::mutex> guard{mu_};
    stats_.in_progress = true;
  }
  auto started = std::chrono::steady_clock::now();
  auto outcome = [&]() -> result<snapshot_info> {
    if (auto st = folder_.create(); !st.ok()) return st;
    // The file is named after the sequence, which is known only once the
    // store is frozen: write under a provisional name (which newest() does
    // not take for a snapshot), then rename.
    auto provisional = (fs::path{folder_.dir()} / "snapshot-writing.wkv").string();
    auto written = write_snapshot_file(*cfg_.db, provisional);
    if (!written) return written;
    // The store may show a transaction before the WAL has it (the primary's
    // writer stages a round's appends): a snapshot must never hold what the
    // WAL could lose, or a restart would number new writes with sequences
    // the snapshot already used.
    if (auto st = wait_until_durable(written->sequence); !st.ok()) {
      std::error_code ignored;
      fs::remove(provisional, ignored);
      return st;
    }
    auto final_path = folder_.path_for(written->sequence);
    std::error_code ec;
    fs::rename(provisional, final_path, ec);
    if (ec) return io_failure("cannot rename " + provisional + " to " + final_path, ec);
    // Only the WAL after the newest snapshot is needed from now on.
    cfg_.log->protect_from(written->sequence + 1);
    folder_.remove_older_than(written->sequence);
    if (cfg_.trim_wal) (void)cfg_.log->drop_before(written->sequence + 1);
    return written;
  }();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  std::lock_guard<std::mutex> guard{mu_};
  stats_.in_progress = false;
  if (!outcome) {
    stats_.last_error = outcome.error().to_string();
    return outcome;
  }
  stats_.last_error.clear();
  ++stats_.count;
  stats_.last_sequence = outcome->sequence;
  stats_.last_bytes = outcome->bytes;
  stats_.last_duration_ms = static_cast<uint64_t>(ms);
  stats_.last_unix_time = wall_clock_us() / 1000000;
  return outcome;
}

void snapshotter::loop() {
  std::unique_lock<std::mutex> lock{mu_};
  for (;;) {
    cv_.wait_for(lock, cfg_.poll, [this] { return stopping_ || requested_; });
    if (stopping_) return;
    bool due =
        requested_ || (cfg_.every_entries > 0 &&
                       cfg_.db->applied_sequence() >= stats_.last_sequence + cfg_.every_entries);
    requested_ = false;
    if (!due) continue;
    lock.unlock();
    auto saved = save();
    if (!saved)
      std::fprintf(stderr, "walrus-kv: snapshot failed: %s\n", saved.error().to_string().c_str());
    lock.lock();
  }
}

// -- transfer ---------------------------------------------------------------------

namespace {

class folder_source final : public snapshot_source {
 public:
  explicit folder_source(std::string dir) : folder_(std::move(dir)) {}

  result<std::unique_ptr<snapshot_reader>> open_latest() override {
    auto newest = folder_.newest();
    if (!newest) return newest.error();
    if (!*newest) return status{errc::not_retained, "no snapshot in " + folder_.dir()};
    return open_snapshot_file((*newest)->path, (*newest)->sequence);
  }

 private:
  snapshot_folder folder_;
};

class store_sink final : public snapshot_sink {
 public:
  store_sink(std::shared_ptr<store> db, std::string dir, std::shared_ptr<wal::log> log)
      : db_(std::move(db)), folder_(std::move(dir)), log_(std::move(log)) {}

  status begin(uint64_t sequence, uint64_t) override {
    receiver_.reset();
    if (auto st = folder_.create(); !st.ok()) return st;
    auto opened = snapshot_receiver::open(folder_.path_for(sequence));
    if (!opened) return opened.error();
    receiver_ = std::move(*opened);
    sequence_ = sequence;
    return status{};
  }

  status write(uint64_t offset, std::string_view data) override {
    if (!receiver_) return status{errc::invalid_transition, "snapshot chunk before its start"};
    return receiver_->add(offset, data);
  }

  status install() override {
    if (!receiver_) return status{errc::invalid_transition, "snapshot end before its start"};
    auto receiver = std::move(receiver_);
    auto committed = receiver->commit(*db_);
    if (!committed) return committed.error();
    if (committed->sequence != sequence_)
      return status{errc::protocol_violation,
                    "the snapshot announced sequence " + std::to_string(sequence_) +
                        " but holds sequence " + std::to_string(committed->sequence)};
    log_->protect_from(sequence_ + 1);
    folder_.remove_older_than(sequence_);
    return status{};
  }

  void abort() override { receiver_.reset(); }

 private:
  std::shared_ptr<store> db_;
  snapshot_folder folder_;
  std::shared_ptr<wal::log> log_;
  std::unique_ptr<snapshot_receiver> receiver_;
  uint64_t sequence_ = 0;
};

}  // namespace

std::shared_ptr<snapshot_source> make_snapshot_source(std::string dir) {
  return std::make_shared<folder_source>(std::move(dir));
}

std::shared_ptr<snapshot_sink> make_snapshot_sink(std::shared_ptr<store> db, std::string dir,
                                                  std::shared_ptr<wal::log> log) {
  return std::make_shared<store_sink>(std::move(db), std::move(dir), std::move(log));
}

}  // namespace walrus::kv
