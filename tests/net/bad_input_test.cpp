// Bad input over real loopback TCP, in both directions (docs/protocol.md §2:
// a peer that refuses input sends one Error frame naming the cause, then
// closes; other connections carry on; nothing unverified reaches a WAL).
//
// Primary side: a plain socket client plays a broken replica against a real
// primary front and listener while a well-behaved replica streams the whole
// time and must end identical to the primary. Replica side: a plain
// listening socket plays a broken primary towards a real replica connector.
// The loopback and net_dsl suites already cover framed garbage, a length
// above the handshake limit, an Ack before Hello, a cluster mismatch and a
// replica with the wrong secret; this suite covers the rest.
#define CAF_SUITE bad_input
#include "caf/test/unit_test.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <string_view>
#include <thread>

#include "actors/wire.hpp"
#include "codec/codec.hpp"
#include "tests/support/frame_socket.hpp"
#include "tests/support/net_cluster.hpp"
#include "tests/support/records.hpp"

using namespace walrus;
using namespace walrus::testing;
using namespace std::chrono_literals;

namespace {

std::string framed(const wire::Frame& frame) {
  std::string out(codec::frame_header_bytes, '\0');
  std::string body = frame.SerializeAsString();
  codec::write_frame_length(out.data(), static_cast<uint32_t>(body.size()));
  return out + body;
}

wire::Frame hello(const std::string& replica_id, uint64_t start_sequence,
                  uint32_t version = wire_format::protocol_version) {
  wire::Frame f;
  auto* h = f.mutable_hello();
  h->set_protocol_version(version);
  h->set_cluster_id("test-cluster");
  h->set_replica_id(replica_id);
  h->set_start_sequence(start_sequence);
  h->add_codecs(wire::CODEC_ZSTD);
  h->set_max_frame_bytes(codec::default_max_frame_bytes);
  h->set_client_nonce(std::string(16, 'n'));
  return f;
}

// What a peer said before it closed: its Error frame, if the last frame
// was one.
struct refusal {
  bool closed = false;
  bool error_frame = false;
  errc code = errc::none;
  std::string message;
};

refusal refusal_of(frame_socket& s) {
  refusal out;
  auto frames = s.read_until_closed(5s);
  out.closed = s.closed();
  if (!frames.empty() && frames.back().has_error()) {
    out.error_frame = true;
    out.code = static_cast<errc>(frames.back().error().code());
    out.message = frames.back().error().message();
  }
  return out;
}

// Appends transactions to the primary's WAL from another thread until
// stopped, so the good replica streams while bad clients come and go. It
// keeps its own record and hands it to the cluster on stop (CAF's checks
// are not thread-safe).
class background_writer {
 public:
  explicit background_writer(net_cluster& cluster) : cluster_(cluster) {
    thread_ = std::thread{[this] { run(); }};
  }
  ~background_writer() { stop(); }

  // Joins the thread; true when every append succeeded.
  bool stop() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
      cluster_.written.insert(cluster_.written.end(), written_.begin(), written_.end());
      written_.clear();
    }
    return !failed_;
  }

 private:
  void run() {
    for (int i = 0; !stop_; ++i) {
      std::vector<std::string> tx;
      for (int k = 0; k <= i % 3; ++k)
        tx.push_back("bg" + std::to_string(i) + "." + std::to_string(k) + std::string(40, 'y'));
      std::vector<std::string_view> views(tx.begin(), tx.end());
      if (!cluster_.primary_log->append(views).ok()) {
        failed_ = true;
        return;
      }
      written_.push_back(std::move(tx));
      std::this_thread::sleep_for(2ms);
    }
  }

  net_cluster& cluster_;
  std::vector<std::vector<std::string>> written_;
  std::atomic<bool> stop_{false};
  bool failed_ = false;
  std::thread thread_;
};

struct fixture : net_cluster {
  // A connection that has completed the handshake as replica `id`.
  frame_socket open_session(const std::string& id) {
    auto s = frame_socket::connect(port);
    CAF_REQUIRE(s.valid());
    CAF_REQUIRE(s.send_frame(hello(id, primary_log->durable_sequence() + 1)));
    auto welcome = s.read_frame(5s, [](const wire::Frame& f) { return !f.has_heartbeat(); });
    CAF_REQUIRE(welcome.has_value());
    CAF_REQUIRE(welcome->has_welcome());
    return s;
  }

  // The good replica got everything and was never cut off; the primary
  // counts every refused client as down.
  void check_good_replica_unharmed() {
    CAF_REQUIRE(converge());
    check_identical();
    auto rs = ask<replica_status>(replicas[0].node->sys, replicas[0].handle, status_atom_v);
    CAF_CHECK_EQUAL(rs.link_down_since_us, 0u);
    auto only_r1_up = [&] {
      bool r1 = false;
      for (auto& info : primary_state().replicas) {
        if ((info.link == "down") == (info.replica_id == "r1")) return false;
        r1 = r1 || info.replica_id == "r1";
      }
      return r1;
    };
    CAF_CHECK(eventually(only_r1_up, 5s));
  }
};

// -- the fake primary's batches ---------------------------------------------------

constexpr uint64_t entries_per_batch = 4;

std::string entry_payload(uint64_t sequence) {
  return "fake-primary-entry-" + std::to_string(sequence);
}

// A Batch of records first..first+3 in transactions of two, zstd-compressed;
// with `damaged`, one payload byte of its second record is flipped (its
// CRC no longer matches).
wire::Frame good_batch(uint64_t first, bool damaged = false) {
  std::vector<std::string> payloads;
  std::vector<bool> commits;
  for (uint64_t i = 0; i < entries_per_batch; ++i) {
    payloads.push_back(entry_payload(first + i));
    commits.push_back(i % 2 == 1);
  }
  auto records = testing::framed_records(first, payloads, commits);
  if (damaged)
    records[wal::encoded_record_bytes(payloads[0].size()) + wal::record_header_bytes] ^= 1;
  auto zstd = codec::make_codec(codec::codec_id::zstd, 1);
  CAF_REQUIRE(zstd.ok());
  std::string packed;
  CAF_REQUIRE((*zstd)->compress(records, packed).ok());
  wire::Frame f;
  auto* b = f.mutable_batch();
  b->set_first_sequence(first);
  b->set_last_sequence(first + entries_per_batch - 1);
  b->set_codec(wire::CODEC_ZSTD);
  b->set_uncompressed_size(static_cast<uint32_t>(records.size()));
  b->set_records(packed);
  b->set_fragment(wire::FRAGMENT_NONE);
  return f;
}

// A zstd frame that declares no size and decodes to 128 KiB of 'x' (one RLE
// block, RFC 8878): what the batch says about its size is all a replica has.
std::string zstd_stream_of_128k() {
  std::string frame = "\x28\xB5\x2F\xFD";                // magic
  frame += '\x00';                                       // no content size, no checksum
  frame += '\x50';                                       // window 2^20
  uint32_t block = (128u * 1024 << 3) | (1u << 1) | 1u;  // RLE, last
  for (int i = 0; i < 3; ++i) frame += static_cast<char>((block >> (8 * i)) & 0xFF);
  frame += 'x';
  return frame;
}

wire::Frame welcome_for(uint64_t start_sequence) {
  wire::Frame f;
  auto* w = f.mutable_welcome();
  w->set_protocol_version(wire_format::protocol_version);
  w->set_cluster_id("test-cluster");
  w->set_primary_id("fake-primary");
  w->set_epoch(1);
  w->set_codec(wire::CODEC_ZSTD);
  w->set_max_frame_bytes(codec::default_max_frame_bytes);
  w->set_start_sequence(start_sequence);
  w->set_first_retained(1);
  w->set_last_sequence(100);
  w->set_heartbeat_interval_ms(100);
  return f;
}

// The connection of a real replica (added after port = fake.port()) to
// the fake primary `fake`, past the handshake: it asked to start at 1 and
// was welcomed there (heartbeats every 100 ms: a peer timeout of 1 s).
frame_socket accept_session(listening_socket& fake) {
  auto link = fake.accept(10s);
  CAF_REQUIRE(link.valid());
  auto hi = link.read_frame(5s);
  CAF_REQUIRE(hi.has_value());
  CAF_REQUIRE(hi->has_hello());
  CAF_CHECK_EQUAL(hi->hello().start_sequence(), 1u);
  CAF_REQUIRE(link.send_frame(welcome_for(1)));
  return link;
}

}  // namespace

CAF_TEST_FIXTURE_SCOPE(bad_input_tests, fixture)

CAF_TEST(bad input before the handshake gets an error frame and a closed connection) {
  start_primary();
  add_replica();
  background_writer writer{*this};

  // Given a client that speaks HTTP: "GET " read as a frame length.
  {
    auto s = frame_socket::connect(port);
    CAF_REQUIRE(s.send_bytes("GET / HTTP/1.1\r\nHost: walrus\r\n\r\n"));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::frame_too_large);
    CAF_CHECK_EQUAL(r.message,
                    "frame of 542393671 bytes at stream offset 0 exceeds the limit of 65536 bytes");
  }
  // A frame body type from a newer protocol version (field 13).
  {
    auto s = frame_socket::connect(port);
    CAF_REQUIRE(s.send_bytes(std::string("\x02\x00\x00\x00\x68\x01", 6)));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::unknown_frame);
    CAF_CHECK_EQUAL(
        r.message, "Frame of 2 bytes sets no body known to protocol version 2 (unknown fields 13)");
  }
  // A Hello of protocol version 1 (entries blobs, not WAL records).
  {
    auto s = frame_socket::connect(port);
    CAF_REQUIRE(s.send_frame(hello("raw-version", 1, 1)));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::version_mismatch);
    CAF_CHECK_EQUAL(r.message, "protocol version 1 is not supported; this primary speaks 2");
  }
  CAF_REQUIRE(writer.stop());
  check_good_replica_unharmed();
}

CAF_TEST(a frame cut short by the end of the stream closes the connection and harms no one) {
  start_primary();
  add_replica();
  background_writer writer{*this};

  // A Hello cut short, then the client's end of the stream (a half-close).
  // docs/protocol.md §2 would have the primary answer with an Error frame,
  // but CAF 0.17 removes a connection's socket handler as soon as the peer
  // closes its side, so nothing can be written any more: the connection is
  // dropped without an answer. What must hold: it is closed, nothing was
  // applied from it, and everyone else is served.
  auto s = frame_socket::connect(port);
  auto bytes = framed(hello("raw-truncated", 1));
  CAF_REQUIRE(s.send_bytes(bytes.substr(0, bytes.size() - 5)));
  s.shutdown_write();
  auto r = refusal_of(s);
  CAF_CHECK(r.closed);

  CAF_REQUIRE(writer.stop());
  check_good_replica_unharmed();
}

CAF_TEST(bad input after the handshake gets an error frame and a closed connection) {
  start_primary();
  add_replica();
  background_writer writer{*this};
  const auto hello_bytes = framed(hello("raw", 1)).size();

  // A length above the 16 MiB the primary announced in Welcome.
  {
    auto s = open_session("raw-big");
    CAF_REQUIRE(s.send_bytes(std::string("\x01\x00\x00\x01", 4)));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::frame_too_large);
    CAF_CHECK_EQUAL(r.message, "frame of 16777217 bytes at stream offset " +
                                   std::to_string(hello_bytes + 4) +
                                   " exceeds the limit of 16777216 bytes");
  }
  // A replica that sends a Batch.
  {
    auto s = open_session("raw-batch");
    CAF_REQUIRE(s.send_frame(good_batch(1)));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::protocol_violation);
    CAF_CHECK_EQUAL(r.message, "a replica sent Batch, which only the primary sends");
  }
  // An ack of far more than was sent.
  {
    auto s = open_session("raw-ack");
    wire::Frame ack;
    ack.mutable_ack()->set_received_sequence(1000000000000);
    CAF_REQUIRE(s.send_frame(ack));
    auto r = refusal_of(s);
    CAF_CHECK(r.closed);
    CAF_CHECK(r.error_frame);
    CAF_CHECK_EQUAL(r.code, errc::protocol_violation);
    const std::string expected =
        "Ack received_sequence 1000000000000 is beyond the last sequence sent, ";
    CAF_CHECK_EQUAL(r.message.substr(0, expected.size()), expected);
  }

  CAF_REQUIRE(writer.stop());
  check_good_replica_unharmed();
}

CAF_TEST(a wrong hmac proof gets an error frame and a closed connection) {
  start_primary(std::string{"s3cret"});
  auto good = connection("r1");
  good.handshake.secret = "s3cret";
  add_replica(good);
  background_writer writer{*this};

  auto s = frame_socket::connect(port);
  CAF_REQUIRE(s.send_frame(hello("raw-hmac", 1)));
  auto challenge = s.read_frame(5s);
  CAF_REQUIRE(challenge.has_value());
  CAF_REQUIRE(challenge->has_challenge());
  CAF_CHECK_EQUAL(challenge->challenge().server_nonce().size(), 16u);
  wire::Frame response;
  response.mutable_auth_response()->set_proof(std::string(32, '\x5A'));
  CAF_REQUIRE(s.send_frame(response));
  auto r = refusal_of(s);
  CAF_CHECK(r.closed);
  CAF_CHECK(r.error_frame);
  CAF_CHECK_EQUAL(r.code, errc::auth_failed);
  CAF_CHECK_EQUAL(r.message,
                  "AuthResponse proof of replica 'raw-hmac' is wrong: the replica does not know "
                  "the secret");

  CAF_REQUIRE(writer.stop());
  check_good_replica_unharmed();
}

CAF_TEST(a replica refuses corrupt and oversized batches and keeps its wal at the last good one) {
  // Given a fake primary that a real replica dials, and a session.
  listening_socket fake;
  CAF_REQUIRE_NOT_EQUAL(fake.port(), 0);
  port = fake.port();
  auto& r = add_replica();
  auto link = accept_session(fake);
  // The fake keeps the link alive while it waits for an answer.
  wire::Frame heartbeat;
  heartbeat.mutable_heartbeat()->set_last_sequence(100);
  auto beat = [&] { link.send_frame(heartbeat); };
  auto ack_of = [&](uint64_t received) {
    return link.read_frame(
        10s,
        [&](const wire::Frame& f) {
          return f.has_ack() && f.ack().received_sequence() >= received;
        },
        beat);
  };
  auto next_refusal = [&] {
    return link.read_frame(
        10s, [](const wire::Frame& f) { return f.has_nack() || f.has_error(); }, beat);
  };
  auto stays_at = [&](uint64_t last) {
    CAF_CHECK_EQUAL(r.machine->applied_sequence(), last);
    CAF_CHECK_EQUAL(r.log->last_sequence(), last);
  };

  // A good batch is stored and applied.
  CAF_REQUIRE(link.send_frame(good_batch(1)));
  CAF_REQUIRE(ack_of(4).has_value());
  stays_at(4);

  // A batch with a record whose CRC does not match: a Nack asking for it again.
  CAF_REQUIRE(link.send_frame(good_batch(5, true)));
  auto nack = next_refusal();
  CAF_REQUIRE(nack.has_value());
  CAF_REQUIRE(nack->has_nack());
  CAF_CHECK_EQUAL(nack->nack().from_sequence(), 5u);
  CAF_CHECK_EQUAL(nack->nack().code(), static_cast<uint32_t>(errc::checksum_mismatch));
  CAF_CHECK_EQUAL(nack->nack().reason(), "batch 5..8: record 6: crc32c differs");
  stays_at(4);
  CAF_REQUIRE(link.send_frame(good_batch(5)));  // the resend
  CAF_REQUIRE(ack_of(8).has_value());
  stays_at(8);

  // A batch whose zstd frame declares more than the batch's uncompressed_size.
  auto declared_bomb = good_batch(9);
  auto real_size = declared_bomb.batch().uncompressed_size();
  declared_bomb.mutable_batch()->set_uncompressed_size(real_size - 1);
  CAF_REQUIRE(link.send_frame(declared_bomb));
  nack = next_refusal();
  CAF_REQUIRE(nack.has_value());
  CAF_REQUIRE(nack->has_nack());
  CAF_CHECK_EQUAL(nack->nack().from_sequence(), 9u);
  CAF_CHECK_EQUAL(nack->nack().code(), static_cast<uint32_t>(errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(nack->nack().reason(), "zstd: input declares " + std::to_string(real_size) +
                                             " bytes, more than the expected " +
                                             std::to_string(real_size - 1) + " bytes");
  stays_at(8);
  CAF_REQUIRE(link.send_frame(good_batch(9)));
  CAF_REQUIRE(ack_of(12).has_value());
  stays_at(12);

  // A batch that declares 4 KiB and whose zstd frame (no size stated)
  // decodes to 128 KiB: refused once it passes 4 KiB.
  auto stream_bomb = good_batch(13);
  stream_bomb.mutable_batch()->set_uncompressed_size(4096);
  stream_bomb.mutable_batch()->set_records(zstd_stream_of_128k());
  CAF_REQUIRE(link.send_frame(stream_bomb));
  nack = next_refusal();
  CAF_REQUIRE(nack.has_value());
  CAF_REQUIRE(nack->has_nack());
  CAF_CHECK_EQUAL(nack->nack().from_sequence(), 13u);
  CAF_CHECK_EQUAL(nack->nack().code(), static_cast<uint32_t>(errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(nack->nack().reason(),
                  "zstd: input decodes to more than 4096 bytes, more than the expected 4096 bytes");
  stays_at(12);

  // A batch declaring more than any replica accepts: an Error frame and a
  // dropped link, before anything is decompressed.
  auto too_big = good_batch(13);
  too_big.mutable_batch()->set_uncompressed_size(100000000);
  CAF_REQUIRE(link.send_frame(too_big));
  auto refused = next_refusal();
  CAF_REQUIRE(refused.has_value());
  CAF_REQUIRE(refused->has_error());
  CAF_CHECK_EQUAL(refused->error().code(), static_cast<uint32_t>(errc::size_limit_exceeded));
  CAF_CHECK_EQUAL(refused->error().message(),
                  "batch 13..16: uncompressed_size 100000000 exceeds the limit of 67108864 bytes");
  link.read_until_closed(5s);
  CAF_CHECK(link.closed());
  stays_at(12);

  // Then the replica dials again and asks for exactly what follows the last
  // good batch.
  auto again = fake.accept(10s);
  CAF_REQUIRE(again.valid());
  auto hello_again = again.read_frame(5s);
  CAF_REQUIRE(hello_again.has_value());
  CAF_REQUIRE(hello_again->has_hello());
  CAF_CHECK_EQUAL(hello_again->hello().start_sequence(), 13u);

  // The replica's WAL, reopened from its bytes in strict mode with every
  // segment verified, holds exactly the good batches.
  stays_at(12);
  CAF_CHECK_EQUAL(r.machine->violations(), 0u);
  wal::memory_file_system copy{5};
  CAF_REQUIRE(copy.create_directories("/r1").ok());
  auto names = fs->list("/r1");
  CAF_REQUIRE(names.ok());
  for (auto& name : *names) {
    auto bytes = fs->contents("/r1/" + name);
    CAF_REQUIRE(bytes.ok());
    auto file = copy.open("/r1/" + name, wal::open_mode::create_new);
    CAF_REQUIRE(file.ok());
    CAF_REQUIRE((*file)->append(bytes->data(), bytes->size()).ok());
  }
  wal::options opts;
  opts.dir = "/r1";
  opts.fs = &copy;
  opts.sync = wal::sync_policy::none();
  opts.recovery = wal::recovery_mode::strict;
  opts.verify_all_segments = true;
  auto reopened = wal::log::open(opts);
  CAF_REQUIRE(reopened.ok());
  CAF_CHECK(!(*reopened)->recovery().truncated());
  CAF_CHECK_EQUAL((*reopened)->last_sequence(), 12u);
  auto cursor = (*reopened)->read_from(1);
  CAF_REQUIRE(cursor.ok());
  std::vector<wal::record_view> records;
  CAF_REQUIRE(cursor->read(records).ok());
  CAF_REQUIRE_EQUAL(records.size(), 12u);
  for (uint64_t i = 0; i < records.size(); ++i) {
    CAF_CHECK_EQUAL(records[i].sequence, i + 1);
    CAF_CHECK_EQUAL(std::string(records[i].payload), entry_payload(i + 1));
    CAF_CHECK_EQUAL(records[i].commit(), i % 2 == 1);
  }
  auto applied = r.machine->entries();
  CAF_REQUIRE_EQUAL(applied.size(), 12u);
  for (uint64_t i = 0; i < applied.size(); ++i) CAF_CHECK_EQUAL(applied[i], entry_payload(i + 1));
}

CAF_TEST(a frame slower to arrive than the peer timeout keeps the link while its bytes flow) {
  // Given a fake primary and a session with a peer timeout of 1 s (3 x 100 ms).
  listening_socket fake;
  CAF_REQUIRE_NOT_EQUAL(fake.port(), 0);
  port = fake.port();
  auto& r = add_replica();
  auto link = accept_session(fake);
  // When one Batch frame trickles in over 2.4 s (the replica reads a body
  // whole, so it hears of the frame only at its end),
  auto bytes = framed(good_batch(1));
  constexpr size_t pieces = 24;
  auto piece = std::max<size_t>(codec::frame_header_bytes, bytes.size() / pieces + 1);
  for (size_t at = 0; at < bytes.size(); at += piece) {
    CAF_REQUIRE(link.send_bytes(std::string_view{bytes}.substr(at, piece)));
    std::this_thread::sleep_for(100ms);
  }
  // then the replica stored it and acks it on the same connection.
  wire::Frame heartbeat;
  heartbeat.mutable_heartbeat()->set_last_sequence(100);
  auto ack = link.read_frame(
      10s,
      [](const wire::Frame& f) {
        return (f.has_ack() && f.ack().received_sequence() >= 4) || f.has_error();
      },
      [&] { link.send_frame(heartbeat); });
  CAF_REQUIRE(ack.has_value());
  CAF_CHECK(!ack->has_error());
  CAF_CHECK_EQUAL(ack->ack().received_sequence(), 4u);
  CAF_CHECK_EQUAL(r.machine->applied_sequence(), 4u);
}

CAF_TEST_FIXTURE_SCOPE_END()
