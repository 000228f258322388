// The session's bookkeeping while locks join and leave inside its callbacks (no etcd: the endpoint refuses).

#include "session/session_state.hpp"
#include "support/bounded_wait.hpp"
#include "support/free_port.hpp"
#include "support/test_lock_listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

session_options refusing_session() {
  session_options so;
  so.endpoints = {"http://127.0.0.1:" + std::to_string(test::free_port())};
  so.watch_prefix = "jobs/";
  so.probe_interval = 50ms;
  so.request_timeout = 200ms;
  so.retry.max_attempts = 1;
  return so;
}

// Issue 10 (session_state.cpp ~189): the failed-probe path iterated listeners_ itself while the callbacks ran. A
// lock that left during its callback shifted the next one into its place (that one was never told); a lock that
// joined could reallocate the vector under the loop.
TEST(SessionListeners, ALockThatLeavesAndJoinsOthersDuringAFailedProbeDoesNotHideTheNext) {
  asio::io_context io;
  auto state = std::make_shared<detail::session_state>(io.get_executor(), refusing_session(), true);
  test::test_lock_listener first, second;
  std::vector<std::unique_ptr<test::test_lock_listener>> newcomers;
  first.on_failure_hook = [&] {
    first.on_failure_hook = nullptr;
    for (int i = 0; i < 40; ++i) {  // enough to reallocate the vector being iterated
      newcomers.push_back(std::make_unique<test::test_lock_listener>());
      state->join(newcomers.back().get(), "jobs/n/");
    }
    asio::co_spawn(state->strand, state->leave(&first), asio::detached);
  };
  state->join(&first, "jobs/a/");
  state->join(&second, "jobs/b/");
  ASSERT_TRUE(test::run_until(io, [&] { return first.probe_failures >= 1; }, 5s));
  // That probe's callbacks have all run (the next probe is a probe_interval away).
  EXPECT_EQ(first.probe_failures, 1);
  EXPECT_EQ(second.probe_failures, 1) << "the lock after the one that left was not told of the failed probe it asked for";
  // The newcomers did not ask for that probe (they joined during it): they hear of the next one.
  ASSERT_TRUE(test::run_until(io, [&] { return newcomers.back()->probe_failures >= 1; }, 5s));
  for (auto& n : newcomers) state->hub->remove(n.get());
  asio::co_spawn(state->strand, state->close(), asio::detached);
  test::run_for(io, 50ms);
}

}  // namespace
}  // namespace clusterlock
