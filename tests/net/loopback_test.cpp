#define CAF_SUITE loopback
#include "caf/test/unit_test.hpp"

#include "actors/wire.hpp"
#include "tests/support/net_cluster.hpp"
#include "tests/support/raw_client.hpp"

using namespace walrus;
using namespace walrus::testing;
using namespace std::chrono_literals;

namespace {

// Decodes every whole frame in `bytes`.
std::vector<wire::Frame> frames_in(const std::string& bytes) {
  codec::frame_decoder decoder{codec::default_max_frame_bytes};
  decoder.feed(bytes.data(), bytes.size());
  std::vector<wire::Frame> out;
  for (;;) {
    auto body = decoder.next();
    if (!body || !*body) return out;
    wire::Frame f;
    if (!wire_format::decode_frame(**body, f).ok()) return out;
    out.push_back(std::move(f));
  }
}

std::string hello_bytes(uint32_t version, const std::string& cluster) {
  wire::Frame f;
  auto* h = f.mutable_hello();
  h->set_protocol_version(version);
  h->set_cluster_id(cluster);
  h->set_replica_id("raw");
  h->set_start_sequence(1);
  h->set_max_frame_bytes(codec::default_max_frame_bytes);
  h->set_client_nonce(std::string(16, 'n'));
  return frame_bytes(f.SerializeAsString());
}

// Sends `bytes`, expects an Error frame with `code` and a closed connection.
std::string expect_refusal(uint16_t port, const std::string& bytes, errc code) {
  raw_client c{port};
  CAF_REQUIRE(c.connected());
  CAF_REQUIRE(c.send(bytes));
  bool closed = false;
  auto reply = c.read_until_closed(3s, closed);
  CAF_CHECK(closed);
  auto frames = frames_in(reply);
  CAF_REQUIRE_EQUAL(frames.size(), 1u);
  CAF_REQUIRE(frames[0].has_error());
  CAF_CHECK_EQUAL(frames[0].error().code(), static_cast<uint32_t>(code));
  return frames[0].error().message();
}

}  // namespace

CAF_TEST_FIXTURE_SCOPE(loopback_tests, net_cluster)

CAF_TEST(entries stream to two replicas over loopback tcp) {
  start_primary();
  write_many(100);
  add_replica();
  add_replica();
  write_many(2000);
  CAF_REQUIRE(converge());
  check_identical();
  auto st = primary_state();
  CAF_CHECK_EQUAL(st.replicas.size(), 2u);
  // Each replica reports itself caught up, with its link up.
  for (auto& r : replicas) {
    auto rs = ask<replica_status>(r.node->sys, r.handle, status_atom_v);
    CAF_CHECK_EQUAL(rs.entries_remaining, 0u);
    CAF_CHECK_EQUAL(rs.link_down_since_us, 0u);
    CAF_CHECK_EQUAL(rs.applied_sequence, primary_log->durable_sequence());
  }
}

CAF_TEST(a replica whose transport dies dials again and resumes without gap or repeat) {
  start_primary();
  auto& r = add_replica();
  for (int round = 0; round < 5; ++round) {
    write_many(300);
    auto transport = ask<caf::actor>(r.node->sys, r.handle, child_atom_v, std::string{"transport"});
    if (transport) caf::anon_send_exit(transport, caf::exit_reason::kill);
    write_many(100);
    std::this_thread::sleep_for(20ms);
  }
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(garbage and oversized frames get an error frame and a closed connection) {
  start_primary();
  add_replica();
  write_many(50);
  CAF_REQUIRE(converge());
  // Not a protobuf Frame at all.
  expect_refusal(port, frame_bytes("\xFF\xFE garbage \x01\x02"), errc::malformed_frame);
  // A length far above the handshake limit: refused before the body arrives.
  auto msg = expect_refusal(port, std::string("\x00\x00\x00\x7F", 4), errc::frame_too_large);
  CAF_CHECK_NOT_EQUAL(msg.find("exceeds the limit"), std::string::npos);
  // A valid frame at the wrong time: an Ack before the handshake.
  wire::Frame ack;
  ack.mutable_ack()->set_received_sequence(5);
  expect_refusal(port, frame_bytes(ack.SerializeAsString()), errc::protocol_violation);
  // The replica is served all along.
  write_many(50);
  CAF_REQUIRE(converge());
  check_identical();
}

CAF_TEST(a version mismatch is refused naming both versions) {
  start_primary();
  auto msg = expect_refusal(port, hello_bytes(1, "test-cluster"), errc::version_mismatch);
  CAF_CHECK_EQUAL(msg, "protocol version 1 is not supported; this primary speaks 2");
  expect_refusal(port, hello_bytes(wire_format::protocol_version, "other-cluster"),
                 errc::cluster_mismatch);
}

CAF_TEST(a replica without the right secret is refused and one with it is served) {
  start_primary(std::string{"s3cret"});
  auto wrong = connection("r1");
  wrong.handshake.secret = "guess";
  add_replica(wrong);
  auto right = connection("r2");
  right.handshake.secret = "s3cret";
  add_replica(right);
  write_many(200);
  CAF_REQUIRE(eventually(
      [&] { return replicas[1].machine->applied_sequence() == primary_log->durable_sequence(); }));
  std::this_thread::sleep_for(200ms);
  CAF_CHECK_EQUAL(replicas[0].machine->applied_sequence(), 0u);
  auto st = primary_state();
  CAF_REQUIRE_EQUAL(st.replicas.size(), 1u);
  CAF_CHECK_EQUAL(st.replicas[0].replica_id, "r2");
}

CAF_TEST_FIXTURE_SCOPE_END()
