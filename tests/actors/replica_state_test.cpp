#define CAF_SUITE replica_state
#include "caf/test/unit_test.hpp"

#include "actors/replica_state.hpp"

using namespace walrus;
using rs = replica_state;

CAF_TEST(the streaming cycle is valid and recorded with times) {
  replica_state_machine m{100};
  CAF_CHECK(m.current() == rs::connecting);
  for (auto to : {rs::streaming, rs::applying, rs::syncing, rs::acknowledging, rs::waiting_for_data,
                  rs::applying, rs::syncing, rs::acknowledging, rs::streaming})
    CAF_CHECK(m.enter(to, 200).ok());
  CAF_CHECK_EQUAL(m.history().size(), 9u);
  CAF_CHECK(m.history().front().from == rs::connecting);
  CAF_CHECK(m.history().front().to == rs::streaming);
  CAF_CHECK_EQUAL(m.history().front().at_us, 200u);
  CAF_CHECK_EQUAL(m.since_us(), 200u);
}

CAF_TEST(invalid transitions are refused loudly) {
  replica_state_machine m{0};
  auto st = m.enter(rs::syncing, 1);
  CAF_CHECK(st.code() == errc::invalid_transition);
  CAF_CHECK_EQUAL(st.message(), "replica state CONNECTING cannot move to SYNCING");
  CAF_CHECK(m.current() == rs::connecting);
  CAF_CHECK(m.history().empty());
  CAF_CHECK(m.enter(rs::error, 2).ok());
  // From ERROR the only way out is to connect again.
  CAF_CHECK(!m.enter(rs::streaming, 3).ok());
  CAF_CHECK(m.enter(rs::connecting, 4).ok());
}

CAF_TEST(link loss and errors are reachable from every state) {
  for (int i = 0; i <= static_cast<int>(rs::error); ++i) {
    auto from = static_cast<rs>(i);
    CAF_CHECK(valid_transition(from, rs::connecting));
    if (from != rs::error) CAF_CHECK(valid_transition(from, rs::error));
  }
  CAF_CHECK(!valid_transition(rs::syncing, rs::applying));
  CAF_CHECK(!valid_transition(rs::bootstrapping, rs::applying));
}

CAF_TEST(history keeps the most recent transitions) {
  replica_state_machine m{0};
  for (uint64_t t = 1; t <= 100; ++t)
    CAF_CHECK(m.enter(t % 2 ? rs::streaming : rs::connecting, t).ok());
  CAF_CHECK_EQUAL(m.history().size(), replica_state_machine::history_limit);
  CAF_CHECK_EQUAL(m.history().back().at_us, 100u);
}
