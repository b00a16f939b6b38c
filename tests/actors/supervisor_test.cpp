#define CAF_SUITE supervisor
#define FAIL(msg) CAF_FAIL(msg)  // dsl.hpp's request<T>() uses an undefined FAIL
#include "caf/test/dsl.hpp"

#include <map>

#include "actors/supervisor.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"

using namespace walrus;
using namespace std::chrono_literals;

namespace {

struct config : caf::actor_system_config {
  config() { walrus::add_message_types(*this); }
};

// A child that answers its incarnation number and crashes on `ok_atom`.
caf::behavior worker(caf::event_based_actor* self, int incarnation) {
  return {
      [=](caf::get_atom) { return incarnation; },
      [=](caf::ok_atom) { self->quit(make_error(errc::component_failed, "crash requested")); },
      [=](caf::close_atom) { self->quit(); },
  };
}

struct fixture : test_coordinator_fixture<config> {
  std::map<std::string, int> starts;  // incarnations per child name

  child_spec spec(std::string name, restart_policy policy = restart_policy::permanent) {
    return child_spec{name,
                      [this, name](caf::actor_system& sys, const sibling_lookup&) {
                        return caf::actor{sys.spawn(worker, ++starts[name])};
                      },
                      policy};
  }

  supervisor_config make_config(restart_strategy strategy, std::vector<std::string> names) {
    supervisor_config cfg;
    cfg.name = "test";
    cfg.strategy = strategy;
    cfg.max_restarts = 3;
    cfg.period = 1s;
    cfg.backoff = backoff_config{10ms, 2.0, 1s, 0.0};
    for (auto& name : names) cfg.children.push_back(spec(name));
    return cfg;
  }

  caf::actor child(const supervisor_actor& sup, const std::string& name) {
    return request<caf::actor>(sup, child_atom_v, name);
  }

  supervisor_status status_of(const supervisor_actor& sup) {
    return request<supervisor_status>(sup, status_atom_v);
  }

  // Makes `victim` fail, lets the supervisor see it and waits out the backoff.
  void crash(const caf::actor& victim, caf::timespan backoff = 10ms) {
    caf::anon_send(victim, caf::ok_atom_v);
    sched.run();
    advance_time(backoff);
    sched.run();
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(supervisor_tests, fixture)

CAF_TEST(one_for_one restarts only the failed child) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::one_for_one, {"a", "b", "c"}));
  sched.run();
  auto a = child(sup, "a"), b = child(sup, "b"), c = child(sup, "c");
  crash(b);
  CAF_CHECK_EQUAL(child(sup, "a"), a);
  CAF_CHECK_NOT_EQUAL(child(sup, "b"), b);
  CAF_CHECK_EQUAL(child(sup, "c"), c);
  CAF_CHECK_EQUAL(request<int>(child(sup, "b"), caf::get_atom_v), 2);
  auto st = status_of(sup);
  CAF_CHECK_EQUAL(st.children[1].restarts, 1u);
  CAF_CHECK_EQUAL(st.children[1].last_failure, "walrus::component_failed: crash requested");
  anon_send(sup, stop_atom_v);
}

CAF_TEST(rest_for_one restarts the failed child and those declared after it) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::rest_for_one, {"a", "b", "c"}));
  sched.run();
  auto a = child(sup, "a"), b = child(sup, "b"), c = child(sup, "c");
  crash(b);
  CAF_CHECK_EQUAL(child(sup, "a"), a);
  CAF_CHECK_NOT_EQUAL(child(sup, "b"), b);
  CAF_CHECK_NOT_EQUAL(child(sup, "c"), c);
  CAF_CHECK_EQUAL(starts["a"], 1);
  CAF_CHECK_EQUAL(starts["c"], 2);
  anon_send(sup, stop_atom_v);
}

CAF_TEST(one_for_all restarts every child) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::one_for_all, {"a", "b", "c"}));
  sched.run();
  auto c = child(sup, "c");
  crash(c);
  CAF_CHECK_EQUAL(starts["a"], 2);
  CAF_CHECK_EQUAL(starts["b"], 2);
  CAF_CHECK_EQUAL(starts["c"], 2);
  anon_send(sup, stop_atom_v);
}

CAF_TEST(backoff delays are as configured) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::one_for_one, {"a"}));
  sched.run();
  // Exponential: 10 ms, 20 ms, 40 ms for the 1st, 2nd, 3rd restart in the period.
  for (auto delay : {10ms, 20ms, 40ms}) {
    auto before = starts["a"];
    caf::anon_send(child(sup, "a"), caf::ok_atom_v);
    sched.run();
    advance_time(delay - 1ms);
    sched.run();
    CAF_CHECK_EQUAL(starts["a"], before);  // not yet
    advance_time(1ms);
    sched.run();
    CAF_CHECK_EQUAL(starts["a"], before + 1);
  }
  // Once the period has passed, the count starts again at the base delay.
  advance_time(2s);
  caf::anon_send(child(sup, "a"), caf::ok_atom_v);
  sched.run();
  advance_time(10ms);
  sched.run();
  CAF_CHECK_EQUAL(starts["a"], 5);
  anon_send(sup, stop_atom_v);
}

CAF_TEST(jitter stays within its bounds and the cap holds) {
  std::mt19937_64 rng{42};
  backoff_config cfg{100ms, 2.0, 1s, 0.25};
  for (uint32_t attempt = 1; attempt <= 10; ++attempt) {
    auto plain = std::min<caf::timespan>(1s, 100ms * (1 << (attempt - 1)));
    for (int i = 0; i < 50; ++i) {
      auto d = backoff_delay(cfg, attempt, rng);
      CAF_CHECK_GREATER_OR_EQUAL(d.count(), plain.count() * 3 / 4);
      CAF_CHECK_LESS_OR_EQUAL(d.count(), plain.count() * 5 / 4);
    }
  }
}

CAF_TEST(exceeding the restart intensity escalates) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::one_for_one, {"a", "b"}));
  sched.run();
  self->monitor(sup);
  auto b = child(sup, "b");
  crash(child(sup, "a"), 10ms);
  crash(child(sup, "a"), 20ms);
  crash(child(sup, "a"), 40ms);
  CAF_CHECK_EQUAL(starts["a"], 4);
  // The fourth failure within the period exceeds max_restarts = 3.
  caf::anon_send(child(sup, "a"), caf::ok_atom_v);
  sched.run();
  caf::error reason;
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; });
  CAF_CHECK(reason == errc::restart_intensity_exceeded);
  CAF_CHECK_EQUAL(render(reason),
                  "walrus::restart_intensity_exceeded: test: more than 3 restarts within 1000 ms; "
                  "last failure of a: walrus::component_failed: crash requested");
  // Its children were stopped with it.
  self->monitor(b);
  sched.run();
  self->receive(
      [&](caf::down_msg& dm) { CAF_CHECK(dm.reason == caf::exit_reason::user_shutdown); });
}

CAF_TEST(restart policies decide what comes back) {
  auto cfg = make_config(restart_strategy::one_for_one, {});
  cfg.children = {spec("perm"), spec("trans", restart_policy::transient),
                  spec("temp", restart_policy::temporary)};
  auto sup = spawn_supervisor(sys, cfg);
  sched.run();
  // A normal exit: permanent comes back, transient and temporary do not.
  for (auto name : {"perm", "trans", "temp"}) caf::anon_send(child(sup, name), caf::close_atom_v);
  sched.run();
  advance_time(1s);
  sched.run();
  CAF_CHECK_EQUAL(starts["perm"], 2);
  CAF_CHECK_EQUAL(starts["trans"], 1);
  CAF_CHECK_EQUAL(starts["temp"], 1);
  auto st = status_of(sup);
  CAF_CHECK(st.children[0].running);
  CAF_CHECK(!st.children[1].running);
  CAF_CHECK(!st.children[2].running);
  anon_send(sup, stop_atom_v);
}

CAF_TEST(a transient child that crashes is restarted) {
  auto cfg = make_config(restart_strategy::one_for_one, {});
  cfg.children = {spec("trans", restart_policy::transient)};
  auto sup = spawn_supervisor(sys, cfg);
  sched.run();
  crash(child(sup, "trans"));
  CAF_CHECK_EQUAL(starts["trans"], 2);
  anon_send(sup, stop_atom_v);
}

CAF_TEST(a killed supervisor takes its children with it) {
  auto sup = spawn_supervisor(sys, make_config(restart_strategy::one_for_one, {"a"}));
  sched.run();
  auto a = child(sup, "a");
  self->monitor(a);
  caf::anon_send_exit(sup, caf::exit_reason::kill);
  sched.run();
  self->receive(
      [&](caf::down_msg& dm) { CAF_CHECK(dm.reason == caf::exit_reason::user_shutdown); });
}

CAF_TEST(children find their earlier siblings) {
  auto cfg = make_config(restart_strategy::rest_for_one, {"a"});
  caf::actor seen;
  cfg.children.push_back(child_spec{"b", [&](caf::actor_system& sys, const sibling_lookup& find) {
                                      seen = find("a");
                                      return caf::actor{sys.spawn(worker, 1)};
                                    }});
  auto sup = spawn_supervisor(sys, cfg);
  sched.run();
  CAF_CHECK_EQUAL(seen, child(sup, "a"));
  crash(child(sup, "a"));
  CAF_CHECK_EQUAL(seen, child(sup, "a"));  // b was restarted after a, with a's new handle
  anon_send(sup, stop_atom_v);
}

CAF_TEST(a child whose factory fails counts as a failure) {
  auto cfg = make_config(restart_strategy::one_for_one, {});
  int attempts = 0;
  cfg.children.push_back(child_spec{"flaky", [&](caf::actor_system& sys, const sibling_lookup&) {
                                      if (++attempts < 3) throw std::runtime_error("disk busy");
                                      return caf::actor{sys.spawn(worker, attempts)};
                                    }});
  auto sup = spawn_supervisor(sys, cfg);
  sched.run();
  advance_time(10ms);
  sched.run();
  advance_time(20ms);
  sched.run();
  CAF_CHECK_EQUAL(attempts, 3);
  CAF_CHECK(status_of(sup).children[0].running);
  anon_send(sup, stop_atom_v);
}

CAF_TEST_FIXTURE_SCOPE_END()
