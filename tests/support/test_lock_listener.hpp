#pragma once
// A lock on a session as the session sees it (detail::lock_listener), for tests of the session layer alone: it
// counts what the session tells it and can run a hook inside a callback.

#include "session/session_state.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clusterlock::test {

struct test_lock_listener : detail::lock_listener {
  bool probe = true;          // wants_probe()
  std::string key_of_interest;  // on_probe records its create revision
  int renewed = 0, lost = 0, probes = 0, probe_failures = 0, resets = 0, events = 0, closed = 0;
  std::vector<std::int64_t> lost_leases;
  std::int64_t seen_create_revision = -1;
  std::int64_t probe_revision = 0;
  boost::system::error_code last_probe_failure;
  std::function<void()> on_failure_hook;  // run inside on_probe_failed
  std::function<void()> on_closed_hook;   // run inside on_session_closed

  void on_watch_event(const etcd::watch_event&) override { ++events; }
  void on_watch_batch_end() override {}
  void on_watch_reset() override { ++resets; }
  void on_lease_renewed() override { ++renewed; }
  void on_lease_lost(std::int64_t lease) override {
    ++lost;
    lost_leases.push_back(lease);
  }
  std::vector<std::string> targets;  // probe_targets(); empty: the whole prefix
  std::size_t keys_read = 0;          // by the last probe
  bool wants_probe() const override { return probe; }
  bool probe_targets(std::vector<std::string>& out) const override {
    out.insert(out.end(), targets.begin(), targets.end());
    return !targets.empty();
  }
  void on_probe(const detail::probe_keys& keys, std::int64_t revision) override {
    ++probes;
    probe_revision = revision;
    keys_read = keys.size();
    if (!key_of_interest.empty()) seen_create_revision = keys.create_revision(key_of_interest);
  }
  void on_probe_failed(boost::system::error_code why) override {
    ++probe_failures;
    last_probe_failure = why;
    if (auto hook = on_failure_hook) hook();  // a copy: the hook may reset itself
  }
  void on_claim_turn() override {}
  void run_contend() override {}
  void on_session_closed() override {
    ++closed;
    if (auto hook = on_closed_hook) hook();
  }
};

}  // namespace clusterlock::test
