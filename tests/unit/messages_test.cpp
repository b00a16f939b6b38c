#define CAF_SUITE messages
#include "caf/test/unit_test.hpp"

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/deep_to_string.hpp"
#include "caf/make_message.hpp"
#include "messages/error.hpp"
#include "messages/interfaces.hpp"
#include "messages/registry.hpp"

using namespace walrus;
using namespace std::chrono_literals;

namespace {

struct config : caf::actor_system_config {
  config() { walrus::add_message_types(*this); }
};

struct fixture {
  config cfg;
  caf::actor_system sys{cfg};

  // Serialises `x` inside a message, as a remote send would, and reads it back.
  template <class T>
  T round_trip(T x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    auto msg = caf::make_message(x);
    auto err = sink(msg);
    CAF_REQUIRE(!err);
    // An unregistered type serialises to an empty message: insist on bytes.
    CAF_REQUIRE_GREATER(buf.size(), 8u);
    caf::message copy;
    caf::binary_deserializer source{sys, buf};
    err = source(copy);
    CAF_REQUIRE(!err);
    CAF_REQUIRE(copy.match_elements<T>());
    return copy.get_as<T>(0);
  }

  template <class T>
  void check_round_trip(T x) {
    auto y = round_trip(x);
    CAF_CHECK_EQUAL(caf::deep_to_string(x), caf::deep_to_string(y));
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(messages_tests, fixture)

CAF_TEST(every registered message type survives serialisation) {
  check_round_trip(
      entry_block{7, 9, shared_bytes::adopt("three framed records"), 8, 12, 9, 20, true});
  check_round_trip(batch{1,
                         3,
                         2,
                         fragment::middle,
                         300,
                         {shared_bytes::adopt("zstd "), shared_bytes::adopt("bytes")},
                         99});
  check_round_trip(ack{10, 9, 8, 1234});
  check_round_trip(nack{42, errc::sequence_gap, "expected 42, got 50"});
  check_round_trip(wait_request{100, 2, ack_level::applied, caf::timespan{1500ms}});
  check_round_trip(state_transition{replica_state::applying, replica_state::syncing, 77});
  replica_info info{"r1", "streaming", 5, 4, 3, 10, 1000, 12, 0, 4096};
  check_round_trip(info);
  check_round_trip(primary_status{1, 20, 20, {info, info}});
  replica_status rs;
  rs.replica_id = "r1";
  rs.state = replica_state::waiting_for_data;
  rs.received_sequence = rs.durable_sequence = rs.applied_sequence = 5;
  rs.primary_sequence = 9;
  rs.transitions = {{replica_state::connecting, replica_state::streaming, 1}};
  rs.snapshot = snapshot_progress{40, 1000, 600, 1};
  rs.link_reconnects = 3;
  rs.transport_restarts = 2;
  check_round_trip(rs);
  // deep_to_string shows only what `inspect` lists: check the fields too.
  auto copy = round_trip(rs);
  CAF_CHECK_EQUAL(copy.link_reconnects, 3u);
  CAF_CHECK_EQUAL(copy.transport_restarts, 2u);
  CAF_CHECK_EQUAL(copy.snapshot.received_bytes, 600u);
  check_round_trip(snapshot_piece{snapshot_piece::chunk, 40, 1000, 512, "bytes"});
  check_round_trip(snapshot_progress{40, 1000, 1000, 2});
  check_round_trip(child_status{"tailer", true, 2, "walrus::io_error: disk"});
  check_round_trip(supervisor_status{"session", {{"tailer", true, 0, ""}}});
}

CAF_TEST(walrus errors are a CAF error category with readable messages) {
  caf::error err = errc::timeout;
  CAF_CHECK(err == errc::timeout);
  CAF_CHECK(err != errc::sequence_gap);
  CAF_CHECK_EQUAL(err.category(), error_category);
  auto detailed = make_error(errc::timeout, "1 of 2 replicas reached sequence 42");
  CAF_CHECK_EQUAL(render(detailed), "walrus::timeout: 1 of 2 replicas reached sequence 42");
  CAF_CHECK_EQUAL(sys.render(detailed), "walrus::timeout: 1 of 2 replicas reached sequence 42");
}

CAF_TEST(status and caf error convert both ways) {
  status st{errc::corruption, "segment 00000000000000000001.wal offset 17: crc mismatch"};
  auto err = to_error(st);
  CAF_CHECK(err == errc::corruption);
  auto back = to_status(err);
  CAF_CHECK(back.code() == errc::corruption);
  CAF_CHECK_EQUAL(back.message(), st.message());
  CAF_CHECK(!to_error(status{}));
  CAF_CHECK(to_status(caf::error{}).ok());
  auto foreign = to_status(caf::make_error(caf::sec::request_timeout));
  CAF_CHECK(foreign.code() == errc::component_failed);
}

CAF_TEST(errors survive serialisation with their context) {
  auto err =
      make_error(errc::not_retained, "sequence 3 is no longer retained; first retained is 9");
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto msg = caf::make_message(err);
  CAF_REQUIRE(!sink(msg));
  caf::message copy;
  caf::binary_deserializer source{sys, buf};
  CAF_REQUIRE(!source(copy));
  CAF_REQUIRE(copy.match_elements<caf::error>());
  CAF_CHECK_EQUAL(render(copy.get_as<caf::error>(0)),
                  "walrus::not_retained: sequence 3 is no longer retained; first retained is 9");
}

CAF_TEST_FIXTURE_SCOPE_END()
