// The primary's writer: one thread runs every write command, in arrival
// order (docs/kv.md, "Write flow"):
//   execute -> the ops become one WAL transaction -> store.apply() it,
// so each command sees every earlier write (INCR, NX/XX, DEL counts). A
// round takes everything the broker queued meanwhile (up to
// max_round_jobs); its replies are released together at the end of the
// round, after the write (and under --sync group the fdatasync) that makes
// all of them durable.
//
// Under --sync always each transaction is appended, and synced, before the
// store shows it: nothing is visible before it is durable. Under the other
// policies (batch_appends) the round's transactions are staged and written
// with one write() at the end of the round (or every staged_flush_bytes):
// a round of N writes costs one write() and, under --sync group (the log
// opened with the interval policy, the writer calling log.sync()), one
// fdatasync. Readers may see a write of the round before the WAL has it,
// as they may see it before it is durable; its client is answered only
// after. If that write() fails, the round's writes are answered with the
// error and the writer refuses writes from then on.
#include <algorithm>
#include <cassert>
#include <cstdio>

#include "apps/kv/resp.hpp"
#include "apps/kv/server_internal.hpp"
#include "caf/send.hpp"

namespace walrus::kv::server {

namespace {

// Emptied job batches kept for the brokers' next submits.
constexpr size_t max_spare_batches = 64;
constexpr size_t max_spare_bytes = 1 << 20;
// How many commands ahead run_batch prefetches a key's slot.
constexpr size_t prefetch_distance = 4;

}  // namespace

writer::writer(config cfg, std::function<void(const std::string&)> on_fatal)
    : cfg_(std::move(cfg)), on_fatal_(std::move(on_fatal)) {}

void writer::start(caf::actor sink) {
  assert(!thread_.joinable());
  sink_ = std::move(sink);
  thread_ = std::thread([this] { loop(); });
}

writer::~writer() {
  stop();
}

void job_batch::add(caf::io::connection_handle hdl, uint64_t conn_id, uint64_t slot,
                    const std::vector<std::string_view>& args) {
  write_job job;
  job.hdl = hdl;
  job.conn_id = conn_id;
  job.slot = slot;
  job.first_arg = ends.size();
  job.arg_count = args.size();
  for (auto a : args) {
    bytes.append(a.data(), a.size());
    ends.push_back(bytes.size());
  }
  jobs.push_back(job);
}

void writer::submit(job_batch& batch) {
  if (batch.empty()) return;
  {
    std::lock_guard<std::mutex> guard{mu_};
    queue_.push_back(std::move(batch));
    if (spare_.empty()) {
      batch = job_batch{};
    } else {
      batch = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  cv_.notify_one();
}

void writer::stop() {
  {
    std::lock_guard<std::mutex> guard{mu_};
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

writer_stats writer::stats() const {
  std::lock_guard<std::mutex> guard{stats_mu_};
  return stats_;
}

void writer::loop() {
  using steady = std::chrono::steady_clock;
  auto next_sweep = steady::now() + cfg_.sweep_interval;
  std::vector<job_batch> batches;
  std::unique_lock<std::mutex> lock{mu_};
  for (;;) {
    if (queue_.empty() && !stopping_) cv_.wait_until(lock, next_sweep);
    if (queue_.empty() && stopping_) return;
    // Whole batches (each the commands of one broker message), at least one,
    // more while the round stays within max_round_jobs commands.
    size_t take_jobs = 0;
    while (!queue_.empty() &&
           (batches.empty() || take_jobs + queue_.front().jobs.size() <= cfg_.max_round_jobs)) {
      take_jobs += queue_.front().jobs.size();
      batches.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    appended_in_round_ = false;
    for (auto& batch : batches) run_batch(batch);
    if (!batches.empty()) {
      std::lock_guard<std::mutex> guard{stats_mu_};
      ++stats_.rounds;
    }
    if (steady::now() >= next_sweep) {
      sweep_expired();
      next_sweep = steady::now() + cfg_.sweep_interval;
    }
    flush_staged();
    // Group commit: one fdatasync for every write of the round.
    if (appended_in_round_ && cfg_.sync_each_round && !failed_) {
      if (auto st = cfg_.log->sync(); !st.ok()) {
        std::string text = "IOERR write not durable, the WAL failed: " + st.to_string();
        for (auto& d : done_)
          if (d.write) {
            d.reply.clear();
            resp::append_error(d.reply, text);
          }
        wal_failed("sync", st.to_string());
      }
      std::lock_guard<std::mutex> guard{stats_mu_};
      ++stats_.round_syncs;
    }
    if (!done_.empty()) {
      caf::anon_send(sink_, writer_round{std::move(done_)});
      done_.clear();
    }
    lock.lock();
    for (auto& batch : batches) {
      // A batch that carried a huge request does not keep its buffer.
      if (batch.bytes.capacity() > max_spare_bytes || spare_.size() >= max_spare_batches) continue;
      batch.clear();
      spare_.push_back(std::move(batch));
    }
    batches.clear();
  }
}

void writer::run_batch(const job_batch& batch) {
  if (batch.empty()) return;
  command_context ctx{*cfg_.db, node_role::primary, *cfg_.time, nullptr};
  done_.reserve(done_.size() + batch.jobs.size());
  uint64_t transactions = 0;
  for (size_t j = 0; j < batch.jobs.size(); ++j) {
    auto& job = batch.jobs[j];
    // The key a few commands ahead (the first argument after the name, for
    // every command the writer runs): its slot loads while these run.
    if (j + prefetch_distance < batch.jobs.size()) {
      auto& ahead = batch.jobs[j + prefetch_distance];
      if (ahead.arg_count >= 2) cfg_.db->prefetch_key(batch.arg(ahead.first_arg + 1));
    }
    args_.clear();
    for (size_t i = job.first_arg; i < job.first_arg + job.arg_count; ++i)
      args_.push_back(batch.arg(i));
    reply_.clear();
    ops_.clear();
    bool write = is_write(args_);
    auto outcome = execute(args_, ctx, reply_, ops_);
    if (outcome == disposition::replicate && !ops_.empty()) {
      std::string error;
      if (commit(error)) {
        ++transactions;
      } else {
        reply_.clear();
        resp::append_error(reply_, error);
      }
    } else if (outcome != disposition::reply && outcome != disposition::replicate) {
      // Only reads and writes come here; anything else is answered by the broker.
      reply_.clear();
      resp::append_error(reply_, "ERR internal: command not runnable by the writer");
    }
    job_done d;
    d.hdl = job.hdl;
    d.conn_id = job.conn_id;
    d.slot = job.slot;
    d.write = write;
    d.request_bytes = batch.request_bytes(job);
    d.sequence = write ? last_committed() : 0;
    d.reply = reply_;
    done_.push_back(std::move(d));
    if (staged_bytes_.size() >= cfg_.staged_flush_bytes) flush_staged();
  }
  std::lock_guard<std::mutex> guard{stats_mu_};
  stats_.jobs += batch.jobs.size();
  stats_.transactions += transactions;
}

bool writer::commit(std::string& error) {
  if (failed_) {
    error = "IOERR writes are refused: the WAL failed (" + stats().failure + ")";
    return false;
  }
  if (cfg_.batch_appends) {
    if (staged_ends_.empty()) {
      staged_first_ = cfg_.log->last_sequence() + 1;  // the writer is the only appender
      first_staged_done_ = done_.size();
    }
    auto first = staged_first_ + staged_ends_.size();
    for (auto entry : ops_.entries()) {
      staged_bytes_.append(entry.data(), entry.size());
      staged_ends_.push_back(staged_bytes_.size());
    }
    staged_commits_.resize((staged_ends_.size() + 7) / 8, '\0');
    auto last = staged_ends_.size() - 1;
    staged_commits_[last / 8] = static_cast<char>(staged_commits_[last / 8] | (1 << (last % 8)));
    appended_in_round_ = true;
    return apply_ops(first, error);
  }
  auto range = cfg_.log->append(ops_.entries());
  if (!range.ok()) {
    wal_failed("append", range.error().to_string());
    error = "IOERR write failed, the WAL failed: " + range.error().to_string();
    return false;
  }
  appended_in_round_ = true;
  return apply_ops(range->first, error);
}

void writer::wal_failed(const char* what, const std::string& text) {
  failed_ = true;
  std::fprintf(stderr, "walrus-kv: WAL %s failed, writes are refused from now on: %s\n", what,
               text.c_str());
  std::lock_guard<std::mutex> guard{stats_mu_};
  stats_.failure = text;
}

bool writer::apply_ops(uint64_t first, std::string& error) {
  ops_.to_transaction(first, tx_);
  if (auto st = cfg_.db->apply(tx_); !st.ok()) {
    // The ops were just encoded by execute(): the store must take them.
    failed_ = true;
    auto text = "the store rejected transaction " + std::to_string(first) + ".." +
                std::to_string(first + ops_.size() - 1) + " that the WAL holds: " + st.to_string();
    {
      std::lock_guard<std::mutex> guard{stats_mu_};
      stats_.failure = text;
    }
    error = "ERR internal error: " + text;
    if (on_fatal_) on_fatal_(text);
    return false;
  }
  return true;
}

uint64_t writer::last_committed() const {
  return staged_ends_.empty() ? cfg_.log->last_sequence() : staged_first_ + staged_ends_.size() - 1;
}

void writer::flush_staged() {
  if (staged_ends_.empty()) return;
  staged_views_.clear();
  size_t begin = 0;
  for (auto end : staged_ends_) {
    staged_views_.emplace_back(staged_bytes_.data() + begin, end - begin);
    begin = end;
  }
  auto range =
      cfg_.log->append_transactions(staged_views_.data(), staged_views_.size(), staged_commits_);
  if (range.ok() && range->first != staged_first_) {
    range = status{errc::invalid_argument, "the WAL gave sequence " + std::to_string(range->first) +
                                               " to what the store applied as " +
                                               std::to_string(staged_first_)};
    if (on_fatal_) on_fatal_(range.error().to_string());
  }
  if (!range.ok()) {
    if (!failed_) wal_failed("append", range.error().to_string());
    auto text = "IOERR write failed, the WAL failed: " + range.error().to_string();
    for (size_t i = first_staged_done_; i < done_.size(); ++i)
      if (done_[i].write) {
        done_[i].reply.clear();
        resp::append_error(done_[i].reply, text);
      }
  }
  staged_bytes_.clear();
  staged_ends_.clear();
  staged_commits_.clear();
}

void writer::sweep_expired() {
  if (failed_) return;
  command_context ctx{*cfg_.db, node_role::primary, *cfg_.time, nullptr};
  // One shard per tick (each of the 32 every 3.2 s at the default interval;
  // a sweep scans the whole shard), more while shards are full of expired keys.
  for (int i = 0; i < 8; ++i) {
    ops_.clear();
    auto n = plan_expire_sweep(ctx, sweep_cursor_, 256, ops_);
    if (n == 0) return;
    std::string error;
    if (!commit(error)) return;
    std::lock_guard<std::mutex> guard{stats_mu_};
    ++stats_.transactions;
    stats_.expired_keys += n;
    if (n < 256) return;
  }
}

}  // namespace walrus::kv::server
