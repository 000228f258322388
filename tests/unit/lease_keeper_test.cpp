#include <gtest/gtest.h>

#include "session/lease_keeper.hpp"

namespace clusterlock::detail {
namespace {

using namespace std::chrono_literals;

TEST(LeaseKeeper, KeepalivePeriodIsAThirdOfTheTtlToTheMillisecond) {
  // A third in seconds would truncate: 2 s / 3 = 0 s (then the 100 ms floor: ten keepalives a second).
  EXPECT_EQ(lease_keeper::keepalive_period(2s), 666ms);
  EXPECT_EQ(lease_keeper::keepalive_period(5s), 1666ms);
  EXPECT_EQ(lease_keeper::keepalive_period(10s), 3333ms);
  EXPECT_EQ(lease_keeper::keepalive_period(60s), 20s);
}

TEST(LeaseKeeper, KeepalivePeriodHasAFloor) {
  EXPECT_EQ(lease_keeper::keepalive_period(0s), 100ms);
}

}  // namespace
}  // namespace clusterlock::detail
