// A member cut off from its peers both ways through their peer relays (fault_relay::blackhole_from by the
// members' processes, as the chaos harness's network::isolate_peer does): it can no longer forward a lease
// keepalive to the new leader. With only its own relay blackholed (what the relays could do before), the
// connections it opens to its peers still passed, and it renewed leases through the leader the others elected.
#include <gtest/gtest.h>

#include <clusterlock/testing/fault_relay.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/http_probe.hpp"

namespace clusterlock::test {
namespace {

using namespace std::chrono_literals;
using clusterlock::testing::fault_relay;
namespace json = boost::json;

std::optional<http_response> post(const std::string& url, std::string_view target, std::string_view body,
                                  std::chrono::milliseconds timeout) {
  http_request_options o;
  o.method = "POST";
  o.target = target;
  o.body = body;
  o.timeout = timeout;
  return http_request(url, o);
}

// The TTL a keepalive through `url` renewed the lease to; 0: it did not (timed out, failed, or the lease is gone).
long long keepalive_ttl(const std::string& url, const std::string& id, std::chrono::milliseconds timeout) {
  const std::string body = R"({"ID":")" + id + R"("})";
  const auto reply = post(url, "/v3/lease/keepalive", body, timeout);
  if (!reply || reply->status != 200) return 0;
  json::error_code ec;
  const auto doc = json::parse(reply->body, ec);
  if (ec || !doc.is_object()) return 0;
  const auto* ttl = doc.as_object().contains("result") ? doc.at("result").as_object().if_contains("TTL") : nullptr;
  return ttl && ttl->is_string() ? std::stoll(std::string(ttl->as_string())) : 0;
}

// Whether the member at `url` follows a leader other than itself (its /v3/maintenance/status "leader" field);
// false while it leads, has no leader, or does not answer.
bool follows_another(const std::string& url) {
  const auto reply = post(url, "/v3/maintenance/status", "{}", 2000ms);
  if (!reply || reply->status != 200) return false;
  json::error_code ec;
  const auto doc = json::parse(reply->body, ec);
  if (ec || !doc.is_object()) return false;
  const auto* leader = doc.as_object().if_contains("leader");
  const auto* header = doc.as_object().if_contains("header");
  const auto* self = header && header->is_object() ? header->as_object().if_contains("member_id") : nullptr;
  return leader && self && *leader != *self;
}

// Whether the member at `url` neither leads nor follows (it answers, with no leader).
bool has_no_leader(const std::string& url) {
  const auto reply = post(url, "/v3/maintenance/status", "{}", 2000ms);
  if (!reply || reply->status != 200) return false;
  json::error_code ec;
  const auto doc = json::parse(reply->body, ec);
  return !ec && doc.is_object() && !doc.as_object().contains("leader");
}

TEST(EtcdPeerCut, AMemberCutOffBothWaysCannotRenewALeaseThroughTheNewLeader) {
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
  const int cut = cluster.leader();
  ASSERT_GE(cut, 0);
  const int a = (cut + 1) % 3, b = (cut + 2) % 3;

  // A lease granted on the majority side, renewed through the member about to be cut off.
  const auto grant = post(cluster.client_url(a), "/v3/lease/grant", R"({"TTL":60})", 5000ms);
  ASSERT_TRUE(grant && grant->status == 200);
  const std::string id(json::parse(grant->body).at("ID").as_string());
  ASSERT_GT(keepalive_ttl(cluster.client_url(cut), id, 5000ms), 0);

  // Cut off both ways: its relay drops what the others open to it, theirs what it opens to them.
  relays[cut]->blackhole_from({cluster.pid(a), cluster.pid(b)});
  relays[a]->blackhole_from({cluster.pid(cut)});
  relays[b]->blackhole_from({cluster.pid(cut)});

  int leader = -1;
  ASSERT_TRUE(eventually([&] { return (leader = cluster.leader()) == a || leader == b; }, 10s)) << leader;
  cluster.etcdctl_at(a, {"put", "during", "1"});  // the majority serves writes
  EXPECT_GT(keepalive_ttl(cluster.client_url(b), id, 5000ms), 0) << "the lease lives on the majority side";

  // The old leader steps down (raft's check-quorum: it hears from no follower) and, cut off both ways, follows
  // nobody: it hears the new leader on no stream. (A leader renews leases by itself, without raft: before it
  // steps down, up to an election timeout or two, a keepalive through it still succeeds.)
  EXPECT_TRUE(eventually([&] { return has_no_leader(cluster.client_url(cut)); }, 10s))
      << "it follows another: " << follows_another(cluster.client_url(cut));
  // Then no keepalive gets through it: it reaches no leader. A negative needs a window: 3 attempts of 2 s each
  // (with the old one-way cut the member followed the new leader on the streams it opened itself, and forwarded
  // the keepalive to it through the leader's relay: the first one succeeded).
  for (int attempt = 0; attempt < 3; ++attempt)
    EXPECT_EQ(keepalive_ttl(cluster.client_url(cut), id, 2000ms), 0) << "attempt " << attempt;
  // Nor a linearizable read.
  const auto read = cluster.try_etcdctl({"get", "during", "--command-timeout=2s"}, {.members = {cut}, .timeout = 10s});
  EXPECT_NE(read.exit_code, 0) << read.out;

  // Healed, it renews through the leader again and catches up.
  for (auto& [member, relay] : relays) relay->pass();
  EXPECT_TRUE(eventually([&] { return keepalive_ttl(cluster.client_url(cut), id, 2000ms) > 0; }, 15s));
  std::string value;
  EXPECT_TRUE(cluster.serves_value(cut, "during", "1", 15s, &value)) << value;
}

}  // namespace
}  // namespace clusterlock::test
