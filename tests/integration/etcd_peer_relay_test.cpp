// The testing kit's etcd_options::advertised_peer_url: members that reach each other through fault_relays, so that
// a test can cut a member off from its peers (the chaos harness's partitions, tests/chaos/network.hpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <clusterlock/testing/fault_relay.hpp>

#include <map>
#include <memory>
#include <string>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"

namespace clusterlock::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using clusterlock::testing::fault_relay;

TEST(EtcdPeerRelay, MembersReachEachOtherThroughTheAdvertisedUrlsAndABlackholedLeaderIsReplaced) {
  std::map<int, std::unique_ptr<fault_relay>> relays;  // outlives the cluster: declared first
  std::map<int, unsigned short> asked;
  etcd_options options{.members = 3};
  options.advertised_peer_url = [&](int member, unsigned short peer_port) {
    auto& r = relays[member];
    if (!r || asked[member] != peer_port) r = std::make_unique<fault_relay>("127.0.0.1", peer_port);
    asked[member] = peer_port;
    return r->url();
  };
  etcd_cluster cluster(options);

  ASSERT_EQ(relays.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(asked[i], cluster.peer_port(i)) << "member " << i;
    EXPECT_GT(relays[i]->accepted(), 0u) << "no peer connected to member " << i << " through its relay";
  }
  // The cluster knows its members by the relays' URLs.
  const std::string members = cluster.etcdctl({"member", "list"});
  for (int i = 0; i < 3; ++i) EXPECT_THAT(members, HasSubstr(relays[i]->url())) << members;

  // Blackholing the leader's peer relay: its followers stop hearing it and elect another.
  const int old_leader = cluster.leader();
  ASSERT_GE(old_leader, 0);
  relays[old_leader]->blackhole();
  int new_leader = -1;
  EXPECT_TRUE(eventually([&] { return (new_leader = cluster.leader()) >= 0 && new_leader != old_leader; }, 10s))
      << "leader still " << new_leader;
  cluster.etcdctl_at((old_leader + 1) % 3, {"put", "during", "1"});  // the majority serves writes

  // Healed, the old leader catches up and serves a linearizable read again.
  relays[old_leader]->pass();
  std::string value;
  EXPECT_TRUE(cluster.serves_value(old_leader, "during", "1", 15s, &value)) << value;
}

}  // namespace
}  // namespace clusterlock::test
