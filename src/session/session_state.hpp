#pragma once
// What a session shares among its locks: the client, the lease, the watch hub and the probe.

#include <clusterlock/session.hpp>

#include "session/diagnostics_sink.hpp"
#include "session/lease_keeper.hpp"
#include "session/session_metrics.hpp"
#include "session/watch_hub.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace clusterlock::detail {

/// What the probe found: the keys it read with their create revisions, sorted by key: every key under the watch
/// prefix, or (a probe of a few locks) just the keys those locks asked for. A sorted vector, not a hash map: at
/// 10,000 locks a map's nodes, rebuilt every probe, fragmented the heap.
class probe_keys {
 public:
  /// Every key under the watch prefix.
  explicit probe_keys(std::vector<etcd::key_value> kvs);
  /// Only the keys `asked` (those not in `kvs` were not there).
  probe_keys(std::vector<etcd::key_value> kvs, std::vector<std::string> asked);
  /// Whether the probe read `key`: a key made after the probe's keys were chosen was not (its 0 would say "gone").
  bool covers(const std::string& key) const;
  /// The key's create revision, 0 when it was not there.
  std::int64_t create_revision(const std::string& key) const;
  /// How many keys the probe found.
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::vector<std::pair<std::string, std::int64_t>> keys_;
  std::optional<std::vector<std::string>> asked_;  // sorted; none: every key under the prefix
};

/// A lock on the session: told of the lease, the watch (through watch_hub::subscriber) and the probe.
class lock_listener : public watch_hub::subscriber {
 public:
  virtual void on_lease_renewed() = 0;
  virtual void on_lease_lost(std::int64_t lease) = 0;
  /// Every probe round, before wants_probe(): a lock may let go of what it keeps for its next turn.
  virtual void on_probe_round() {}
  /// Whether this lock needs the probe (it holds, or held, the lock).
  virtual bool wants_probe() const = 0;
  /// The keys its probe must read, added to `out`; false: every key under the watch prefix (the default).
  /// With few locks asking for a few keys each, the probe reads just those: a waiter among n, each on its own
  /// session, read all n keys every second (n^2 a second for the queue, which saturated etcd at 1,000 waiters).
  virtual bool probe_targets(std::vector<std::string>& /*out*/) const { return false; }
  /// A linearizable read at `revision` found these keys under the watch prefix.
  virtual void on_probe(const probe_keys& keys, std::int64_t revision) = 0;
  /// The probe got no answer in time (`why`): etcd is unreachable, or the member lost quorum.
  virtual void on_probe_failed(boost::system::error_code why) = 0;
  /// The member serving the watch may be cut off: a lock with a watch of its own (watch_scope::predecessor) makes it
  /// again, as the session reopens its hub.
  virtual void reopen_watch() {}
  /// Its turn to contend for its name (see session_state::claim).
  virtual void on_claim_turn() = 0;
  /// Its turn to run its contend coroutine (see session_state::request_contend); it calls contend_ended() after.
  virtual void run_contend() = 0;
  /// The session is closed (async_close, or its last user went), or was already closed when this lock joined:
  /// no lease, watch or probe any more, and ensure_lease() answers errc::not_started. A lock that held was told
  /// on_lease_lost() just before. Posted: never called inside the session's bookkeeping, and never after leave().
  virtual void on_session_closed() {}

 protected:
  ~lock_listener() = default;
};

class session_state : public std::enable_shared_from_this<session_state>, lease_keeper::listener {
 public:
  /// `has_handle`: a public session object refers to it (else it belongs to one lock manager alone).
  session_state(boost::asio::any_io_executor ex, session_options opts, bool has_handle);

  // On the strand.
  /// Starts the probe with the first lock. On a closed session the lock is told on_session_closed() (posted).
  /// `follow_prefix`: the hub tells it of every change under `prefix` (false: the lock watches what it needs itself).
  void join(lock_listener* l, const std::string& prefix, bool follow_prefix = true);
  /// The lock is done with the session: it is told nothing more from now on. When nobody uses the session any
  /// more (no lock, no session handle), it stops and revokes its lease.
  boost::asio::awaitable<void> leave(lock_listener* l);
  void handle_dropped();  // the public session object went away
  /// Stops keepalives, watch and probe at once, tells every lock (posted) that its lease is gone and that the
  /// session is closed, then revokes the lease (bounded by request_timeout). A second call completes when the
  /// first has finished, with its result. Cancellation (terminal): stops waiting; the first call then leaves the
  /// lease to its TTL (the keepalives are stopped all the same).
  boost::asio::awaitable<result<void>> close();
  bool closed() const noexcept { return closed_; }
  /// session::stats(): any thread.
  session_stats stats() const;

  /// Completes with the next lease etcd says is gone, or errc::not_started once closed (see session.hpp).
  boost::asio::awaitable<result<std::int64_t>> wait_lease_lost();

  const boost::asio::any_io_executor strand;
  const session_options opts;
  /// Where the session's layers report trouble (diagnostics in session_options).
  const std::shared_ptr<diagnostics_sink> diagnostics;
  /// What the lease keeper, the watch hub and the probe count (stats()).
  const std::shared_ptr<session_metrics> metrics;
  const std::shared_ptr<etcd::client> client;
  const std::shared_ptr<lease_keeper> lease;
  const std::shared_ptr<watch_hub> hub;
  /// The last keepalive's or probe's failure: what a lock reports when its lease's proven lifetime ran out.
  boost::system::error_code last_failure;

  /// One contender per lock name: two would share one key (`name/<lease>`) and both believe they hold the lock.
  /// True when `l` is first in `name`'s line (it joins the line if not in it); otherwise on_claim_turn() tells it
  /// when it is. unclaim() leaves the line and passes the turn on.
  bool claim(const std::string& name, lock_listener* l);
  void unclaim(const std::string& name, lock_listener* l);

  /// At most max_contending contend coroutines run at once on a session; the others wait in line, without a
  /// coroutine. (At 10,000 locks, 10,000 acquisitions at once held 10,000 coroutine frames and requests waiting
  /// for the client's connections: they set the process's memory high-water mark.) 128: enough that a burst's
  /// enqueue txns fill batches of up to 64 (etcd::client::txn_batched) on 16 connections.
  static constexpr int max_contending = 128;
  /// The client's connections for unary requests: up to 16 in flight (etcd commits concurrent writes together); a
  /// burst's extra connections close once idle.
  static constexpr std::size_t max_connections = 16;
  void request_contend(lock_listener* l);  // l->run_contend() now or when a coroutine ends
  void contend_ended();
  void leave_contend_line(lock_listener* l);

 private:
  void on_lease_renewed() override;
  void on_lease_lost(std::int64_t lease) override;
  void on_keepalive_failed(boost::system::error_code) override;
  boost::asio::awaitable<void> probe_loop();
  struct probe_result {
    std::vector<etcd::key_value> kvs;
    std::int64_t revision = 0;
  };
  boost::asio::awaitable<result<probe_result>> probe_all();
  boost::asio::awaitable<result<probe_result>> probe_some(const std::vector<std::string>& keys);
  /// At most this many keys are probed one by one (in one txn); more, and the probe reads the whole prefix.
  static constexpr std::size_t max_probe_targets = 16;
  boost::asio::awaitable<result<etcd::range_response>> probe_range(const etcd::range_request& req,
                                                                   std::chrono::steady_clock::time_point deadline);
  /// `call()` within `deadline`; with several endpoints, a second try on the next one after a failure.
  template <class Reply, class Call>
  boost::asio::awaitable<result<Reply>> probe_call(Call call, std::chrono::steady_clock::time_point deadline);

  // A lock as it was when a round of callbacks began: told only if it is still there, and not gone and joined
  // again (perhaps another object at the same address) meanwhile. A lock may leave, be destroyed, or make others
  // join or leave inside any callback.
  struct member {
    lock_listener* l;
    std::uint64_t joined;
  };
  std::vector<member> members() const;
  bool still_joined(const member& m) const;
  template <class F>
  void tell_each(const std::vector<member>& ms, F f) {
    for (const auto& m : ms)
      if (still_joined(m)) f(m.l);
  }
  void report_loss(std::int64_t lease);
  void reopen_watches();  // the hub's, and each lock's own

  std::unordered_map<std::string, std::vector<lock_listener*>> claims_;  // name -> line, the claim's owner first
  std::deque<lock_listener*> contend_line_;
  int contending_ = 0;
  std::vector<lock_listener*> listeners_;
  std::unordered_map<lock_listener*, std::uint64_t> joined_;  // lock -> its join number
  std::uint64_t joins_ = 0;
  bool handle_alive_;
  bool probing_ = false;
  bool closed_ = false;
  boost::asio::cancellation_signal stop_probe_;
  std::int64_t probe_page_limit_;  // keys per probe page; lowered when a page is too large

  bool close_done_ = false;
  boost::system::error_code close_error_;
  std::vector<boost::asio::steady_timer*> close_waiters_;

  // Lost leases no wait_lease_lost() was pending for, oldest first (bounded), and the pending waits.
  static constexpr std::size_t max_unreported_losses = 64;
  std::deque<std::int64_t> unreported_losses_;
  struct loss_waiter {
    boost::asio::steady_timer* timer;
    std::optional<result<std::int64_t>> outcome;
  };
  std::vector<loss_waiter*> loss_waiters_;
};

/// The client settings of a session (`diagnostics`: where the client's reports go; may be null).
etcd::client_config client_config_of(const session_options& o, std::shared_ptr<diagnostics_sink> diagnostics = nullptr);

/// A lease ID as etcd's tools print it (lower-case hex).
std::string lease_hex(std::int64_t lease);

}  // namespace clusterlock::detail
