// Codec and framing throughput on replication-shaped data. Run in Release:
//   cmake -S . -B build-codec-bench -G Ninja -DWALRUS_BENCH=ON -DCMAKE_BUILD_TYPE=Release
//   ninja -C build-codec-bench walrus_bench_codec && build-codec-bench/bench/walrus_bench_codec
// Bytes/s are uncompressed bytes; the `ratio` counter is compressed/uncompressed.
#include <benchmark/benchmark.h>

#include <cassert>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.hpp"
#include "codec/frame.hpp"

using namespace walrus::codec;

namespace {

constexpr size_t batch_bytes = 256 * 1024;

void append_varint(std::string& out, uint32_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// An entries blob of key/value writes: "SET user:000123 <value>" where the
// value is a JSON-ish document of about `value_bytes` bytes drawn from a
// small vocabulary (repetitive, like real application records).
std::string wal_batch(size_t value_bytes, uint32_t seed) {
  static const char* const words[] = {"alpha", "bravo",  "active", "pending", "eu-west-1",
                                      "admin", "viewer", "true",   "false",   "null",
                                      "order", "cart",   "paid",   "shipped", "premium"};
  std::mt19937 rng{seed};
  std::string blob;
  while (blob.size() < batch_bytes) {
    auto user = rng() % 1000000;
    std::string payload = "SET user:" + std::to_string(1000000 + user).substr(1) +
                          " {\"id\":" + std::to_string(user) +
                          ",\"balance\":" + std::to_string(rng() % 100000);
    for (int field = 0; payload.size() < value_bytes; ++field)
      payload += ",\"f" + std::to_string(field) + "\":\"" + words[rng() % 15] + "\"";
    payload += "}";
    append_varint(blob, static_cast<uint32_t>(payload.size()));
    blob += payload;
  }
  return blob;
}

std::string random_batch(uint32_t seed) {
  std::mt19937 rng{seed};
  std::string blob(batch_bytes, '\0');
  for (auto& c : blob) c = static_cast<char>(rng() & 0xFF);
  return blob;
}

struct dataset {
  const char* name;
  std::string bytes;
};

const std::vector<dataset>& datasets() {
  static const std::vector<dataset> all{{"wal_100B", wal_batch(100, 1)},
                                        {"wal_1KiB", wal_batch(1024, 2)},
                                        {"random", random_batch(3)}};
  return all;
}

std::unique_ptr<block_codec> make(const char* config) {
  auto parsed = parse_codec_config(config);
  assert(parsed.ok());
  auto made = make_codec(*parsed);
  assert(made.ok());
  return std::move(made).value();
}

void report(benchmark::State& state, size_t input_bytes, size_t compressed_bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input_bytes));
  state.counters["ratio"] = static_cast<double>(compressed_bytes) / input_bytes;
}

void bench_compress(benchmark::State& state, const char* config, const dataset* data) {
  auto codec = make(config);
  std::string compressed;
  for (auto _ : state) {
    auto st = codec->compress(data->bytes, compressed);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(compressed.data());
  }
  report(state, data->bytes.size(), compressed.size());
}

void bench_decompress(benchmark::State& state, const char* config, const dataset* data) {
  auto codec = make(config);
  std::string compressed;
  std::string restored;
  if (!codec->compress(data->bytes, compressed).ok()) state.SkipWithError("compress failed");
  for (auto _ : state) {
    auto st = codec->decompress(compressed, data->bytes.size(), data->bytes.size(), restored);
    if (!st.ok()) state.SkipWithError(st.to_string().c_str());
    benchmark::DoNotOptimize(restored.data());
  }
  report(state, data->bytes.size(), compressed.size());
}

// Decodes a stream of frames of `frame_bytes` fed in pieces of `piece_bytes`
// (a socket read size), touching each body.
void bench_frame_decode(benchmark::State& state) {
  auto frame_bytes = static_cast<size_t>(state.range(0));
  auto piece_bytes = static_cast<size_t>(state.range(1));
  frame_encoder encoder{default_max_frame_bytes};
  std::string body(frame_bytes, 'f');
  std::string stream;
  while (stream.size() < 8 * 1024 * 1024) (void)encoder.append(body, stream);
  for (auto _ : state) {
    frame_decoder decoder{default_max_frame_bytes};
    size_t frames = 0;
    for (size_t at = 0; at < stream.size(); at += piece_bytes) {
      decoder.feed(stream.data() + at, std::min(piece_bytes, stream.size() - at));
      for (auto next = decoder.next(); next.ok() && *next; next = decoder.next()) {
        benchmark::DoNotOptimize((*next)->data());
        ++frames;
      }
    }
    benchmark::DoNotOptimize(frames);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}

void bench_frame_encode(benchmark::State& state) {
  auto frame_bytes = static_cast<size_t>(state.range(0));
  frame_encoder encoder{default_max_frame_bytes};
  std::string body(frame_bytes, 'f');
  std::string out;
  const size_t frames = (8 * 1024 * 1024) / frame_bytes;
  for (auto _ : state) {
    out.clear();
    for (size_t i = 0; i < frames; ++i) (void)encoder.append(body, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

bool register_codec_benchmarks() {
  for (auto config : {"none", "snappy", "zstd:-1", "zstd:1", "zstd:3", "zstd:6"}) {
    for (auto& data : datasets()) {
      auto suffix = std::string(config) + "/" + data.name;
      benchmark::RegisterBenchmark(("compress/" + suffix).c_str(), bench_compress, config, &data);
      benchmark::RegisterBenchmark(("decompress/" + suffix).c_str(), bench_decompress, config,
                                   &data);
    }
  }
  return true;
}

const bool codec_benchmarks_registered = register_codec_benchmarks();

}  // namespace

BENCHMARK(bench_frame_decode)
    ->ArgNames({"frame", "piece"})
    ->Args({16 * 1024, 64 * 1024})
    ->Args({16 * 1024, 1500})
    ->Args({16 * 1024, 8 * 1024 * 1024})
    ->Args({100, 64 * 1024});
BENCHMARK(bench_frame_encode)->ArgName("frame")->Arg(100)->Arg(16 * 1024);

BENCHMARK_MAIN();
