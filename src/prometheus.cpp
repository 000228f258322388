// The Prometheus text format (https://prometheus.io/docs/instrumenting/exposition_formats/): one HELP and TYPE line
// per family, then its samples; label values escaped (backslash, double quote, newline).

#include <clusterlock/prometheus.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <functional>
#include <set>
#include <stdexcept>
#include <string_view>

namespace clusterlock {

namespace {

using series_labels = prometheus_labels;

std::string number(double v) {
  std::array<char, 64> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), r.ptr);
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

void check_label_name(const std::string& n) {
  static constexpr std::array<std::string_view, 5> ours{"lock", "session", "cause", "error", "le"};
  bool ok = !n.empty() && !(n[0] >= '0' && n[0] <= '9') && n.rfind("__", 0) != 0;
  for (char c : n) ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  for (auto o : ours) ok = ok && n != o;
  if (!ok) throw std::invalid_argument("clusterlock::write_prometheus: label name '" + n + "' is not allowed");
}

void write_escaped(std::ostream& os, std::string_view v) {
  for (char c : v) {
    if (c == '\\') os << "\\\\";
    else if (c == '"') os << "\\\"";
    else if (c == '\n') os << "\\n";
    else os << c;
  }
}

// Writes the families of one kind of subject (locks, or sessions), each family's series together.
class family_writer {
 public:
  family_writer(std::ostream& os, const series_labels& common) : os_(os), common_(common) {}

  void header(std::string_view name, std::string_view type, std::string_view help) {
    os_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(std::string_view name, const series_labels& own, double value) {
    os_ << name;
    char sep = '{';
    for (const auto* set : {&own, &common_})
      for (const auto& [k, v] : *set) {
        os_ << sep << k << "=\"";
        write_escaped(os_, v);
        os_ << '"';
        sep = ',';
      }
    if (sep == ',') os_ << '}';
    os_ << ' ' << number(value) << '\n';
  }
  void histogram(std::string_view name, series_labels own, const latency_histogram& h) {
    const std::string n(name);
    own.emplace_back("le", "");
    for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
      own.back().second = number(h.upper_bounds[i]);
      sample(n + "_bucket", own, static_cast<double>(h.buckets[i]));
    }
    own.back().second = "+Inf";
    sample(n + "_bucket", own, static_cast<double>(h.count));
    own.pop_back();
    sample(n + "_sum", own, h.sum);
    sample(n + "_count", own, static_cast<double>(h.count));
  }

 private:
  std::ostream& os_;
  const series_labels& common_;
};

template <class T>
using value_of = std::function<double(const T&)>;

template <class T>
void gauge_or_counter(family_writer& w, const std::vector<T>& subjects, const char* label, std::string_view name,
                      std::string_view type, std::string_view help, value_of<T> value) {
  if (subjects.empty()) return;
  w.header(name, type, help);
  for (const auto& s : subjects) w.sample(name, {{label, s.name_for_label()}}, value(s));
}

// Thin views giving each subject its label value.
struct lock_view {
  const lock_stats* s;
  std::string name_for_label() const { return s->name; }
};
struct session_view {
  const session_stats* s;
  std::string name_for_label() const { return s->watch_prefix; }
};

void write_locks(family_writer& w, const std::vector<lock_view>& locks) {
  if (locks.empty()) return;
  using V = lock_view;
  auto g = [&](std::string_view name, std::string_view type, std::string_view help, value_of<V> f) {
    gauge_or_counter<V>(w, locks, "lock", name, type, help, std::move(f));
  };
  g("clusterlock_lock_held", "gauge", "1 while this process holds the lock (have_lock()), else 0.",
    [](const V& v) { return v.s->have_lock ? 1.0 : 0.0; });
  g("clusterlock_lock_fencing_token", "gauge", "The fencing token while the lock is held (the key's create revision), else 0.",
    [](const V& v) { return static_cast<double>(v.s->fencing_token); });
  g("clusterlock_lock_acquisitions_total", "counter", "Times the lock was acquired (ACQUIRED events).",
    [](const V& v) { return static_cast<double>(v.s->acquisitions); });
  w.header("clusterlock_lock_losses_total", "counter",
           "Times the lock was lost, by cause: removed (etcd removed the key), lease_lost, released (given up by us), "
           "unknown (could not prove we held it).");
  for (const auto& v : locks) {
    const std::array<std::pair<const char*, std::uint64_t>, 4> causes{
        {{"removed", v.s->removed_by_etcd}, {"lease_lost", v.s->lease_lost}, {"released", v.s->released},
         {"unknown", v.s->unknowns}}};
    for (const auto& [cause, n] : causes)
      w.sample("clusterlock_lock_losses_total", {{"lock", v.s->name}, {"cause", cause}}, static_cast<double>(n));
  }
  g("clusterlock_lock_held_seconds_total", "counter", "Time the lock was held, in seconds.",
    [](const V& v) { return seconds(v.s->time_held); });
  g("clusterlock_lock_unknown_seconds_total", "counter", "Time spent UNKNOWN (held, but not provably), in seconds.",
    [](const V& v) { return seconds(v.s->time_unknown); });
  g("clusterlock_lock_queue_position", "gauge", "Our key's place in line: 0 holds the lock, 1 is next; -1: no key.",
    [](const V& v) { return v.s->queue_position ? static_cast<double>(*v.s->queue_position) : -1.0; });
  g("clusterlock_lock_queue_length", "gauge", "Keys in line for the lock, holder included, as last seen.",
    [](const V& v) { return static_cast<double>(v.s->queue_length); });
}

void write_sessions(family_writer& w, const std::vector<session_view>& sessions) {
  if (sessions.empty()) return;
  using V = session_view;
  auto g = [&](std::string_view name, std::string_view type, std::string_view help, value_of<V> f) {
    gauge_or_counter<V>(w, sessions, "session", name, type, help, std::move(f));
  };
  g("clusterlock_session_lease_ttl_seconds", "gauge", "The TTL etcd granted the session's lease, in seconds.",
    [](const V& v) { return static_cast<double>(v.s->granted_ttl.count()); });
  g("clusterlock_session_lease_valid_seconds", "gauge", "How much longer the lease is proven to live, in seconds.",
    [](const V& v) { return seconds(v.s->lease_valid_for); });
  w.header("clusterlock_session_seconds_since_renewal", "gauge",
           "Seconds since the last proven lease renewal (send time of the last keepalive or grant etcd answered). "
           "Absent before the first lease.");
  for (const auto& v : sessions)
    if (v.s->since_renewal)
      w.sample("clusterlock_session_seconds_since_renewal", {{"session", v.s->watch_prefix}}, seconds(*v.s->since_renewal));
  g("clusterlock_session_leases_granted_total", "counter", "Leases etcd granted the session.",
    [](const V& v) { return static_cast<double>(v.s->leases_granted); });
  g("clusterlock_session_leases_lost_total", "counter", "Leases etcd said were gone (expired or revoked).",
    [](const V& v) { return static_cast<double>(v.s->leases_lost); });
  g("clusterlock_session_keepalive_failures_total", "counter", "Keepalives etcd did not answer.",
    [](const V& v) { return static_cast<double>(v.s->keepalive_failures); });
  w.header("clusterlock_session_keepalive_duration_seconds", "histogram", "Keepalive latency, answered or not, in seconds.");
  for (const auto& v : sessions)
    w.histogram("clusterlock_session_keepalive_duration_seconds", {{"session", v.s->watch_prefix}}, v.s->keepalive_latency);
  g("clusterlock_session_probe_failures_total", "counter", "Probes (linearizable reads) without an answer in time.",
    [](const V& v) { return static_cast<double>(v.s->probe_failures); });
  w.header("clusterlock_session_probe_duration_seconds", "histogram", "Probe latency, answered or not, in seconds.");
  for (const auto& v : sessions)
    w.histogram("clusterlock_session_probe_duration_seconds", {{"session", v.s->watch_prefix}}, v.s->probe_latency);
  g("clusterlock_session_watch_restarts_total", "counter", "Times the watch stream was opened again after it broke.",
    [](const V& v) { return static_cast<double>(v.s->watch_restarts); });
  g("clusterlock_session_requests_total", "counter", "etcd requests made (each once, whatever its retries).",
    [](const V& v) { return static_cast<double>(v.s->requests.requests); });
  w.header("clusterlock_session_request_failures_total", "counter", "etcd requests that failed, by error.");
  for (const auto& v : sessions)
    for (const auto& [error, n] : v.s->requests.failures_by_error)
      w.sample("clusterlock_session_request_failures_total", {{"session", v.s->watch_prefix}, {"error", error}},
               static_cast<double>(n));
}

}  // namespace

void write_prometheus(std::ostream& os, const lock_stats& lock, const prometheus_labels& labels) {
  write_prometheus(os, std::vector<lock_stats>{lock}, std::vector<session_stats>{lock.session}, labels);
}

void write_prometheus(std::ostream& os, const std::vector<lock_stats>& locks, const std::vector<session_stats>& sessions,
                      const prometheus_labels& labels) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    check_label_name(labels[i].first);
    for (std::size_t j = 0; j < i; ++j)
      if (labels[j].first == labels[i].first)
        throw std::invalid_argument("clusterlock::write_prometheus: label '" + labels[i].first + "' given twice");
  }
  // Two of one name would write series with the same labels, which Prometheus refuses ("metric not unique").
  const auto refuse_twice = [](const auto& items, auto name_of, const char* what) {
    std::set<std::string> names;
    for (const auto& item : items)
      if (!names.insert(name_of(item)).second)
        throw std::invalid_argument(std::string("clusterlock::write_prometheus: two ") + what + " named '" +
                                    name_of(item) + "' in one scrape: their series would collide");
  };
  refuse_twice(locks, [](const lock_stats& l) { return l.name; }, "locks");
  refuse_twice(sessions, [](const session_stats& s) { return s.watch_prefix; }, "sessions");
  family_writer w(os, labels);
  std::vector<lock_view> lv;
  for (const auto& l : locks) lv.push_back({&l});
  std::vector<session_view> sv;
  for (const auto& s : sessions) sv.push_back({&s});
  write_locks(w, lv);
  write_sessions(w, sv);
}

}  // namespace clusterlock
