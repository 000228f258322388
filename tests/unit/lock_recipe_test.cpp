// Which keys make a lock's queue: `name/` and one more segment, as etcd's recipe names them; never a nested name's.

#include "recipe/lock_recipe.hpp"

#include <gtest/gtest.h>

namespace clusterlock::recipe {
namespace {

TEST(LockRecipe, TheQueueHoldsTheNamesOwnKeysNotThoseOfNestedNames) {
  EXPECT_TRUE(in_queue("a/", "a/694d8a1b2c3d4e80"));  // ours and etcdctl lock's
  EXPECT_TRUE(in_queue("a/", "a/x"));                 // any one segment: a key put by hand blocks as in etcd
  EXPECT_FALSE(in_queue("a/", "a/b/694d8a1b2c3d4e80")) << "the lock a/b's key";
  EXPECT_FALSE(in_queue("a/", "a/b/"));
  EXPECT_FALSE(in_queue("a/", "a/"));  // the prefix alone is no lock's key
  EXPECT_FALSE(in_queue("a/", "ab/1"));
  EXPECT_FALSE(in_queue("a/b/", "a/1"));
  EXPECT_TRUE(in_queue("a/b/", "a/b/1"));
}

TEST(LockRecipe, KeysAreTheLeaseInLowerCaseHexAsEtcdsRecipeMakesThem) {
  EXPECT_EQ(lock_key("a/", 0x694d8a1b2c3d4e80), "a/694d8a1b2c3d4e80");
  EXPECT_TRUE(in_queue("a/", lock_key("a/", 1)));
}

}  // namespace
}  // namespace clusterlock::recipe
