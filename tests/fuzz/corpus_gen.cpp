// Writes the seed corpora of the frame and wal fuzz targets (the input
// layouts are described at the top of frame_fuzz.cpp and wal_fuzz.cpp):
//
//   walrus_fuzz_corpus_gen tests/fuzz/corpus
//
// Small real inputs: valid frames of every type, handshakes and sessions,
// malformed streams, compressed blocks and bombs for every codec; WALs
// written by wal::log (one and two segments) and damaged copies of them.
// The output is deterministic. Regression inputs found by fuzzing are added
// to the corpus by hand (named regression-*) and are not written here.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actors/wire.hpp"
#include "base/crc32c.hpp"
#include "codec/codec.hpp"
#include "codec/frame.hpp"
#include "tests/support/records.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

namespace {

using namespace walrus;
namespace fs = std::filesystem;

void save(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out{dir / name, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

// -- frames -------------------------------------------------------------------

std::string framed(const wire::Frame& frame) {
  std::string body = frame.SerializeAsString();
  std::string out(codec::frame_header_bytes, '\0');
  codec::write_frame_length(out.data(), static_cast<uint32_t>(body.size()));
  return out + body;
}

// A stream input of frame_fuzz: mode 0, config, cuts, stream.
std::string stream_input(uint8_t config, const std::string& stream,
                         const std::vector<uint16_t>& cuts = {}) {
  std::string out;
  out.push_back(0);
  out.push_back(static_cast<char>(config));
  out.push_back(static_cast<char>(cuts.size()));
  for (auto c : cuts) {
    out.push_back(static_cast<char>(c & 0xFF));
    out.push_back(static_cast<char>(c >> 8));
  }
  return out + stream;
}

// config bits 3-4: the session codec.
uint8_t codec_bits(codec::codec_id id) {
  return static_cast<uint8_t>(static_cast<uint8_t>(id) << 3);
}

wire::Frame hello() {
  wire::Frame f;
  auto* h = f.mutable_hello();
  h->set_protocol_version(wire_format::protocol_version);
  h->set_cluster_id("fuzz-cluster");
  h->set_replica_id("fuzz-replica");
  h->set_epoch(7);
  h->set_start_sequence(5);
  h->add_codecs(wire::CODEC_ZSTD);
  h->add_codecs(wire::CODEC_SNAPPY);
  h->set_max_frame_bytes(codec::default_max_frame_bytes);
  h->set_client_nonce(std::string(16, 'c'));
  return f;
}

wire::Frame welcome(wire::Codec codec) {
  wire::Frame f;
  auto* w = f.mutable_welcome();
  w->set_protocol_version(wire_format::protocol_version);
  w->set_cluster_id("fuzz-cluster");
  w->set_primary_id("fuzz-primary");
  w->set_epoch(7);
  w->set_codec(codec);
  w->set_max_frame_bytes(codec::default_max_frame_bytes);
  w->set_start_sequence(5);
  w->set_first_retained(1);
  w->set_last_sequence(100);
  w->set_heartbeat_interval_ms(100);
  return f;
}

// A batch of `count` records from `first`, whole transactions of two
// records each (the last one may stand alone), compressed with `id`.
wire::Frame batch(codec::codec_id id, uint64_t first, uint64_t count,
                  wire::Fragment part = wire::FRAGMENT_NONE) {
  std::vector<std::string> payloads;
  std::vector<bool> commits;
  for (uint64_t i = 0; i < count; ++i) {
    commits.push_back(part == wire::FRAGMENT_NONE ? (i % 2 == 1 || i + 1 == count)
                                                  : part == wire::FRAGMENT_LAST && i + 1 == count);
    payloads.push_back("entry-" + std::to_string(first + i) + std::string(i % 5, 'x'));
  }
  auto blob = testing::framed_records(first, payloads, commits);
  auto codec = codec::make_codec(id, 1);
  std::string packed;
  if (!codec || !(*codec)->compress(blob, packed).ok()) std::exit(1);
  wire::Frame f;
  auto* b = f.mutable_batch();
  b->set_first_sequence(first);
  b->set_last_sequence(first + count - 1);
  b->set_codec(static_cast<wire::Codec>(id));
  b->set_uncompressed_size(static_cast<uint32_t>(blob.size()));
  b->set_records(packed);
  b->set_fragment(part);
  b->set_sent_at_us(1700000000000000);
  return f;
}

wire::Frame ack(uint64_t received, uint64_t durable, uint64_t applied) {
  wire::Frame f;
  auto* a = f.mutable_ack();
  a->set_received_sequence(received);
  a->set_durable_sequence(durable);
  a->set_applied_sequence(applied);
  a->set_timestamp_us(1700000000000001);
  return f;
}

wire::Frame nack(uint64_t from, uint32_t code, const std::string& reason) {
  wire::Frame f;
  auto* n = f.mutable_nack();
  n->set_from_sequence(from);
  n->set_code(code);
  n->set_reason(reason);
  return f;
}

wire::Frame error(uint32_t code, const std::string& message) {
  wire::Frame f;
  f.mutable_error()->set_code(code);
  f.mutable_error()->set_message(message);
  return f;
}

void frame_streams(const fs::path& dir) {
  using codec::codec_id;
  wire::Frame challenge, auth, heartbeat, begin, chunk, end;
  challenge.mutable_challenge()->set_server_nonce(std::string(16, 's'));
  auth.mutable_auth_response()->set_proof(std::string(32, 'p'));
  heartbeat.mutable_heartbeat()->set_timestamp_us(1700000000000002);
  heartbeat.mutable_heartbeat()->set_last_sequence(42);
  begin.mutable_snapshot_begin()->set_snapshot_sequence(50);
  begin.mutable_snapshot_begin()->set_total_bytes(5);
  chunk.mutable_snapshot_chunk()->set_data("hello");
  end.mutable_snapshot_end()->set_total_bytes(5);
  end.mutable_snapshot_end()->set_crc32c(crc32c::value(std::string_view{"hello"}));

  save(dir, "hello", stream_input(0, framed(hello())));
  save(dir, "hello-auth-response", stream_input(0, framed(hello()) + framed(auth), {2, 9}));
  save(dir, "challenge-welcome",
       stream_input(0, framed(challenge) + framed(welcome(wire::CODEC_SNAPPY))));
  save(dir, "welcome-zstd", stream_input(4, framed(welcome(wire::CODEC_ZSTD))));
  for (auto id : {codec_id::none, codec_id::snappy, codec_id::zstd}) {
    auto name = std::string(codec::to_string(id));
    save(dir, "batch-" + name, stream_input(codec_bits(id), framed(batch(id, 5, 7)), {1, 4, 30}));
    save(dir, "session-" + name,
         stream_input(codec_bits(id) | 4, framed(welcome(static_cast<wire::Codec>(id))) +
                                              framed(batch(id, 5, 4)) + framed(ack(8, 6, 8)) +
                                              framed(batch(id, 9, 3)) + framed(ack(11, 11, 9)) +
                                              framed(heartbeat)));
  }
  save(dir, "fragments",
       stream_input(0, framed(batch(codec_id::none, 5, 3, wire::FRAGMENT_FIRST)) +
                           framed(batch(codec_id::none, 8, 2, wire::FRAGMENT_MIDDLE)) +
                           framed(batch(codec_id::none, 10, 2, wire::FRAGMENT_LAST))));
  save(dir, "acks",
       stream_input(0, framed(batch(codec_id::none, 5, 6)) + framed(ack(7, 6, 5)) +
                           framed(ack(6, 6, 6)) + framed(ack(99, 10, 10))));
  save(dir, "nacks",
       stream_input(0, framed(batch(codec_id::none, 5, 6)) +
                           framed(nack(7, 30, "expected 7, got 9")) + framed(nack(0, 13, "zero")) +
                           framed(nack(6, 99, "?"))));
  save(dir, "heartbeat", stream_input(0, framed(heartbeat)));
  std::string long_reason;
  for (int i = 0; i < 400; ++i) long_reason += "\xC3\xA9";  // é: cut inside a character?
  save(dir, "errors",
       stream_input(0, framed(error(13, "batch 5..11: crc32c differs")) +
                           framed(error(0, "code zero")) +
                           framed(error(250, long_reason + long_reason))));
  save(dir, "snapshot", stream_input(0, framed(begin) + framed(chunk) + framed(end)));
  // Frames a peer must refuse.
  wire::Frame empty;
  std::string unknown_body = "\x68\x01";  // field 13, varint 1: a body from a newer version
  std::string unknown(codec::frame_header_bytes, '\0');
  codec::write_frame_length(unknown.data(), static_cast<uint32_t>(unknown_body.size()));
  save(dir, "unknown-frame", stream_input(0, unknown + unknown_body));
  save(dir, "zero-length", stream_input(0, std::string(4, '\0') + framed(heartbeat)));
  save(dir, "over-limit", stream_input(2, framed(hello())));  // limit 16 bytes
  save(dir, "length-huge", stream_input(0, std::string("\xFF\xFF\xFF\x7F", 4) + "abc"));
  auto cut = framed(hello());
  save(dir, "truncated", stream_input(0, cut.substr(0, cut.size() - 3), {2, 5}));
  save(dir, "garbage", stream_input(3, std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  save(dir, "not-protobuf",
       stream_input(0, std::string("\x05\x00\x00\x00\xFF\xFE\xFD\xFC\xFB", 9)));
}

// -- decompression inputs ---------------------------------------------------------

std::string block_input(uint8_t selector, uint32_t declared, uint32_t limit,
                        const std::string& block) {
  std::string out;
  out.push_back(1);
  out.push_back(static_cast<char>(selector));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((declared >> (8 * i)) & 0xFF));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((limit >> (8 * i)) & 0xFF));
  return out + block;
}

void codec_blocks(const fs::path& dir) {
  std::string sample;
  for (int i = 0; i < 40; ++i) sample += "SET key:" + std::to_string(i * 7) + " value-abcdef\n";
  for (auto id : {codec::codec_id::none, codec::codec_id::snappy, codec::codec_id::zstd}) {
    auto codec = codec::make_codec(id, 1);
    std::string packed;
    if (!codec || !(*codec)->compress(sample, packed).ok()) std::exit(1);
    auto name = std::string(codec::to_string(id));
    auto n = static_cast<uint32_t>(sample.size());
    auto selector = static_cast<uint8_t>(id);
    save(dir, "block-" + name, block_input(selector, n, 1 << 20, packed));
    save(dir, "block-" + name + "-unknown-size", block_input(selector | 0x80, 0, 1 << 20, packed));
    save(dir, "block-" + name + "-declared-short", block_input(selector, n - 1, 1 << 20, packed));
    save(dir, "block-" + name + "-limit-short", block_input(selector, n, n - 1, packed));
  }
  // zstd frames by hand (RFC 8878): a declared 4 GiB - 1, and a frame with
  // no size whose RLE blocks expand 4 bytes into 128 KiB each.
  std::string zstd_huge = "\x28\xB5\x2F\xFD\xC0\x50";
  for (int i = 0; i < 8; ++i) zstd_huge.push_back(i < 4 ? '\xFF' : '\0');
  save(dir, "bomb-zstd-declared", block_input(2 | 0x80, 0, 1 << 20, zstd_huge + "\x01\x00\x00"));
  std::string rle = std::string("\x28\xB5\x2F\xFD\x00\x50", 6);
  for (int b = 0; b < 12; ++b) {
    uint32_t header = (128u * 1024 << 3) | (1u << 1) | (b == 11 ? 1u : 0u);
    for (int i = 0; i < 3; ++i) rle.push_back(static_cast<char>((header >> (8 * i)) & 0xFF));
    rle.push_back('x');
  }
  save(dir, "bomb-zstd-stream", block_input(2 | 0x80, 0, 1 << 20, rle));
  save(dir, "bomb-zstd-stream-declared", block_input(2, 4096, 1 << 20, rle));
  // snappy: a varint length of 2^32 - 1 in front of one literal.
  save(dir, "bomb-snappy", block_input(1, 100, 1 << 20, "\xFF\xFF\xFF\xFF\x0F\x00x"));
}

// -- WALs -------------------------------------------------------------------------

// A wal_fuzz input: options byte, split, the files.
std::string wal_input(uint8_t flags, const std::string& first, const std::string& second = {}) {
  std::string out;
  out.push_back(static_cast<char>(flags | (second.empty() ? 0 : 1)));
  auto split = static_cast<uint16_t>(first.size());
  out.push_back(static_cast<char>(split & 0xFF));
  out.push_back(static_cast<char>(split >> 8));
  return out + first + second;
}

// The segment files of a log written by wal::log: transactions of one to
// three records until `records` records are in.
std::vector<std::string> written_log(uint64_t records, uint64_t payload_bytes) {
  wal::memory_file_system mfs{1};
  wal::options opts;
  opts.dir = "/w";
  opts.fs = &mfs;
  opts.sync = wal::sync_policy::none();
  opts.segment_bytes = 4096;
  {
    auto log = wal::log::open(opts);
    if (!log) std::exit(1);
    uint64_t written = 0;
    for (uint64_t tx = 0; written < records; ++tx) {
      std::vector<std::string> payloads;
      for (uint64_t k = 0; k <= tx % 3 && written < records; ++k, ++written)
        payloads.push_back("tx" + std::to_string(tx) + "." + std::to_string(k) +
                           std::string(payload_bytes, 'w'));
      std::vector<std::string_view> views(payloads.begin(), payloads.end());
      if (!(*log)->append(views).ok()) std::exit(1);
    }
    if (!(*log)->close().ok()) std::exit(1);
  }
  auto names = mfs.list("/w");
  std::vector<std::string> files;
  for (auto& name : *names) files.push_back(*mfs.contents("/w/" + name));
  return files;
}

std::string segment_header(uint64_t first) {
  std::string header(wal::segment_header_bytes, '\0');
  wal::encode_segment_header(first, header.data());
  return header;
}

std::string record(uint64_t sequence, uint8_t flags, const std::string& payload) {
  std::string out(wal::encoded_record_bytes(payload.size()), '\0');
  wal::encode_record(out.data(), sequence, flags, payload);
  return out;
}

void wal_files(const fs::path& dir) {
  auto one = written_log(12, 10);
  auto two = written_log(60, 90);  // rolls once at 4 KiB
  if (one.size() != 1 || two.size() != 2) std::exit(1);
  save(dir, "one-segment", wal_input(0, one[0]));
  save(dir, "one-segment-sync-always", wal_input(4 | 0x40, one[0]));
  save(dir, "two-segments", wal_input(0, two[0], two[1]));
  save(dir, "two-segments-last-verified", wal_input(2 | 0x80, two[0], two[1]));
  auto torn = two[1].substr(0, two[1].size() - 7);
  save(dir, "two-segments-torn", wal_input(0x10, two[0], torn));
  auto flipped = two[0];
  flipped[flipped.size() / 2] ^= 0x20;
  save(dir, "two-segments-damaged-first", wal_input(0, flipped, two[1]));
  save(dir, "two-segments-gap", wal_input(0, two[0], two[1].substr(0, 20) + two[1].substr(60)));
  save(dir, "empty-file", wal_input(0, ""));
  save(dir, "header-only", wal_input(0, segment_header(1)));
  save(dir, "header-short", wal_input(0, segment_header(1).substr(0, 11)));
  auto v2 = segment_header(1);
  v2[4] = 2;
  wal::put_le<uint32_t>(v2.data() + 16, crc32c::value(v2.data(), 16));
  save(dir, "version-2", wal_input(0, v2));
  using wal::make_flags;
  using wal::record_type;
  auto data = make_flags(record_type::data, false), commit = make_flags(record_type::data, true);
  uint8_t ignorable = static_cast<uint8_t>((9 << wal::type_shift) | wal::flag_ignorable);
  save(dir, "ignorable-record",
       wal_input(0, segment_header(3) + record(3, data, "a") + record(4, ignorable, "marker") +
                        record(5, commit, "b")));
  save(dir, "partial-transaction",
       wal_input(0, segment_header(1) + record(1, commit, "a") + record(2, data, "b")));
  auto valid_after = segment_header(1) + record(1, commit, "a") + record(2, commit, "b");
  valid_after[wal::segment_header_bytes + 2] ^= 1;
  save(dir, "damage-before-valid", wal_input(0, valid_after));
  save(dir, "high-sequence",
       wal_input(0, segment_header(uint64_t{1} << 62) + record(uint64_t{1} << 62, commit, "h")));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: walrus_fuzz_corpus_gen <corpus root, e.g. tests/fuzz/corpus>\n");
    return 2;
  }
  fs::path root{argv[1]};
  frame_streams(root / "frame");
  codec_blocks(root / "frame");
  wal_files(root / "wal");
  std::printf("corpus written to %s/{frame,wal}\n", argv[1]);
  return 0;
}
