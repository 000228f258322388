#include "chaos/chaos_records.hpp"

#include <charconv>
#include <sstream>

namespace clusterlock::chaos {

namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <class T>
bool number(std::string_view s, T& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::string_view to_string(fault_kind k) {
  switch (k) {
    case fault_kind::kill_holder: return "kill_holder";
    case fault_kind::stop_holder: return "stop_holder";
    case fault_kind::restart_member: return "restart_member";
    case fault_kind::stop_leader: return "stop_leader";
    case fault_kind::stop_majority: return "stop_majority";
    case fault_kind::delete_key: return "delete_key";
    case fault_kind::revoke_lease: return "revoke_lease";
    case fault_kind::compact: return "compact";
    case fault_kind::clock_slow: return "clock_slow";
    case fault_kind::clock_fast: return "clock_fast";
    case fault_kind::clock_jump: return "clock_jump";
    case fault_kind::isolate_holder: return "isolate_holder";
    case fault_kind::isolate_member: return "isolate_member";
    case fault_kind::isolate_leader: return "isolate_leader";
    case fault_kind::split: return "split";
    case fault_kind::flap: return "flap";
  }
  return "?";
}

std::optional<fault_kind> fault_kind_from(std::string_view name) {
  for (auto k : all_fault_kinds)
    if (to_string(k) == name) return k;
  return std::nullopt;
}

std::optional<action> parse_action(std::string_view line) {
  const auto w = words(line);
  if (w.size() != 3) return std::nullopt;
  action a;
  if (!number(w[0], a.ns) || !number(w[1], a.token) || a.token <= 0) return std::nullopt;
  a.identity = std::string(w[2]);
  return a;
}

std::string format_fault(const fault_record& f) {
  std::ostringstream out;
  out << f.id << ' ' << to_string(f.kind) << ' ' << f.inject_ns << ' ' << f.heal_ns << ' '
      << (f.detail.empty() ? "-" : f.detail);
  return out.str();
}

std::optional<fault_record> parse_fault(std::string_view line) {
  const auto w = words(line);
  if (w.size() < 4) return std::nullopt;
  fault_record f;
  const auto kind = fault_kind_from(w[1]);
  if (!kind || !number(w[0], f.id) || !number(w[2], f.inject_ns) || !number(w[3], f.heal_ns)) return std::nullopt;
  f.kind = *kind;
  if (w.size() > 4) f.detail = std::string(w[4]);
  return f;
}

std::string format_driver(const driver_record& d) {
  return std::to_string(d.ns) + (d.requeue ? " requeue " : " terminate ") + d.identity;
}

std::optional<driver_record> parse_driver(std::string_view line) {
  const auto w = words(line);
  if (w.size() != 3 || (w[1] != "terminate" && w[1] != "requeue")) return std::nullopt;
  driver_record d;
  d.requeue = w[1] == "requeue";
  if (!number(w[0], d.ns)) return std::nullopt;
  d.identity = std::string(w[2]);
  return d;
}

std::string format_resource_write(const resource_write& w) {
  return std::to_string(w.ns) + (w.accepted ? " accept " : " reject ") + std::to_string(w.token) + " " + w.identity;
}

std::optional<resource_write> parse_resource_write(std::string_view line) {
  const auto v = words(line);
  if (v.size() != 4 || (v[1] != "accept" && v[1] != "reject")) return std::nullopt;
  resource_write w;
  if (!number(v[0], w.ns) || !number(v[2], w.token)) return std::nullopt;
  w.accepted = v[1] == "accept";
  w.identity = std::string(v[3]);
  return w;
}

int slot_of(std::string_view identity) {
  if (identity.size() < 2 || identity[0] != 'c') return -1;
  const auto dot = identity.find('.');
  int slot = -1;
  if (!number(identity.substr(1, dot == std::string_view::npos ? std::string_view::npos : dot - 1), slot)) return -1;
  return slot;
}

}  // namespace clusterlock::chaos
