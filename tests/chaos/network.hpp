// The chaos run's network: every link goes through a clusterlock::testing::fault_relay the harness controls, so that
// partitions need no privileges.
//
//   contender slot i -> member j   one relay per (slot, member); the contender of slot i (any generation) is given
//                                  the relays of its row as its endpoints
//   member -> member j             one relay in front of member j's peer port: j's advertised peer URL (the kit's
//                                  etcd_options::advertised_peer_url), so every peer's connections to j go through it
//
// A member's peer relay carries what its peers send it on the connections they open (raft streams they read from
// j, pipelines and forwarded requests to j), and j's answers on them; what j itself opens to a peer goes through
// that peer's relay. Every connection comes from 127.0.0.1, so a relay tells the members apart by process
// (fault_relay::blackhole_from looks the opener up in /proc): isolate_peer(j) makes j's relay blackhole what the
// other members open to j, and their relays what j opens to them. That cuts j off both ways (its raft messages,
// its stream readers, and the lease keepalives it would forward to the leader), and leaves the others' links to
// one another passing. docs/chaos.md says what that means.
#pragma once

#include <clusterlock/testing/fault_relay.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock::chaos::detail {

class network {
 public:
  /// One relay per (slot, member) to the members' client ports.
  void add_clients(int slots, const std::vector<unsigned short>& client_ports);
  /// The peer URL of `member`, listening on `peer_port`: a relay in front of it, made on first use (the kit's
  /// advertised_peer_url hook; a member that got new ports gets a new relay).
  std::string peer_url(int member, unsigned short peer_port);

  int slots() const { return slots_; }
  int members() const { return members_; }
  /// The endpoints of slot `slot`, rotated so that slots start on different members: "url,url,url".
  std::string endpoints(int slot) const;
  /// The member slot `slot` is connected to most (open connections through its relays; ties: the first in its
  /// endpoint order): the member its lock uses.
  int member_used_by(int slot) const;

  void set_client(int slot, int member, testing::fault_relay::mode m);
  /// Cuts `member` off from every other member, both ways (the header's comment); member_pids[i] is member i's
  /// process now (etcd_cluster::pid: a restarted member has a new one, so call this at the injection).
  void isolate_peer(int member, const std::vector<int>& member_pids);
  /// Every relay passes again.
  void heal();
  /// Short text of what is not passing, for harness.log: "c1>m0:blackhole p2:blackhole_from(4242,4343)".
  std::string describe() const;

 private:
  testing::fault_relay& client(int slot, int member) const;
  testing::fault_relay& peer(int member) const;

  int slots_ = 0;
  int members_ = 0;
  std::vector<std::unique_ptr<testing::fault_relay>> clients_;  // [slot * members + member]
  std::map<int, std::pair<unsigned short, std::unique_ptr<testing::fault_relay>>> peers_;
};

}  // namespace clusterlock::chaos::detail
