#include "chaos/network.hpp"

#include <stdexcept>

namespace clusterlock::chaos::detail {

using testing::fault_relay;

void network::add_clients(int slots, const std::vector<unsigned short>& client_ports) {
  slots_ = slots;
  members_ = static_cast<int>(client_ports.size());
  clients_.clear();
  for (int i = 0; i < slots; ++i)
    for (unsigned short port : client_ports) clients_.push_back(std::make_unique<fault_relay>("127.0.0.1", port));
}

std::string network::peer_url(int member, unsigned short peer_port) {
  auto& entry = peers_[member];
  if (!entry.second || entry.first != peer_port) {
    entry.second = std::make_unique<fault_relay>("127.0.0.1", peer_port);
    entry.first = peer_port;
  }
  return entry.second->url();
}

fault_relay& network::client(int slot, int member) const {
  if (slot < 0 || slot >= slots_ || member < 0 || member >= members_)
    throw std::out_of_range("network: no relay for slot " + std::to_string(slot) + ", member " +
                            std::to_string(member));
  return *clients_[static_cast<std::size_t>(slot * members_ + member)];
}

std::string network::endpoints(int slot) const {
  std::string csv;
  for (int i = 0; i < members_; ++i) {
    if (!csv.empty()) csv += ',';
    csv += client(slot, (slot + i) % members_).url();
  }
  return csv;
}

int network::member_used_by(int slot) const {
  int best = slot % members_;
  std::uint64_t most = 0;
  for (int i = 0; i < members_; ++i) {
    const int m = (slot + i) % members_;
    const auto open = client(slot, m).open_connections();
    if (open > most) {
      most = open;
      best = m;
    }
  }
  return best;
}

void network::set_client(int slot, int member, fault_relay::mode m) {
  fault_relay& r = client(slot, member);
  switch (m) {
    case fault_relay::mode::pass: return r.pass();
    case fault_relay::mode::blackhole: return r.blackhole();
    case fault_relay::mode::cut: return r.cut();
    default: return r.one_way(m);
  }
}

testing::fault_relay& network::peer(int member) const {
  auto it = peers_.find(member);
  if (it == peers_.end() || !it->second.second)
    throw std::out_of_range("network: no peer relay for member " + std::to_string(member));
  return *it->second.second;
}

void network::isolate_peer(int member, const std::vector<int>& member_pids) {
  std::vector<int> others;
  for (int m = 0; m < members_; ++m)
    if (m != member) others.push_back(member_pids.at(static_cast<std::size_t>(m)));
  const int lone = member_pids.at(static_cast<std::size_t>(member));
  peer(member).blackhole_from(others);  // what the others open to it
  for (int m = 0; m < members_; ++m)
    if (m != member) peer(m).blackhole_from({lone});  // what it opens to them
}

void network::heal() {
  for (auto& r : clients_)
    if (r->current_mode() != fault_relay::mode::pass) r->pass();
  for (auto& [member, entry] : peers_)
    if (entry.second && entry.second->current_mode() != fault_relay::mode::pass) entry.second->pass();
}

std::string network::describe() const {
  std::string out;
  for (int i = 0; i < slots_; ++i)
    for (int j = 0; j < members_; ++j) {
      const auto m = client(i, j).current_mode();
      if (m != fault_relay::mode::pass) out += " c" + std::to_string(i) + ">m" + std::to_string(j) + ":" + to_string(m);
    }
  for (const auto& [member, entry] : peers_) {
    if (!entry.second || entry.second->current_mode() == fault_relay::mode::pass) continue;
    out += " p" + std::to_string(member) + ":" + to_string(entry.second->current_mode());
    const auto sources = entry.second->blackholed_sources();
    for (std::size_t i = 0; i < sources.size(); ++i)
      out += (i == 0 ? "(" : ",") + std::to_string(sources[i]) + (i + 1 == sources.size() ? ")" : "");
  }
  return out.empty() ? "all pass" : out.substr(1);
}

}  // namespace clusterlock::chaos::detail
