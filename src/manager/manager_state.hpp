#pragma once
// The state behind one lock_manager: drives the recipe (lock_machine + lock_recipe calls) for one lock on a session,
// carries out the user's operations, and tells users.
//
// One idea holds it together: the user says what they want (hold the lock, or not; observe; shut down) and a
// single work coroutine makes etcd match, one step at a time: release our key if we no longer want it, else
// (re)read the queue and create our key if we want one. It runs only while there is such work (at 10,000 locks on
// a session an idle coroutine per lock cost 24 MB). Operations wait for the state they need (held, key gone, shut
// down) and complete from publish(). User code (callbacks, completions) never runs inside this bookkeeping: it is
// posted.

#include <clusterlock/lock_manager.hpp>

#include "manager/event_queue.hpp"
#include "manager/lock_metrics.hpp"
#include "recipe/lock_machine.hpp"
#include "session/session_state.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace clusterlock::detail {

struct manager_state : std::enable_shared_from_this<manager_state>, lock_listener {
  using clock = std::chrono::steady_clock;
  using error_code = boost::system::error_code;

  enum class phase { idle, active, shutting_down, shut_down };

  // An operation waiting for a state: it completes from settle_operations() (or at once when cancelled).
  template <class Handler>
  struct pending {
    std::uint64_t id;
    Handler handler;
    bool decided = false;  // the outcome is known; the handler runs once no key of ours is left behind
    error_code result;
    bool acquired = false;  // async_try_acquire's answer
  };

  /// `rule`: a lock's, a semaphore's or a read-write lock's reader or writer (see recipe::admission).
  manager_state(std::shared_ptr<session_state> s, options o, bool own, recipe::admission rule = {});
  ~manager_state();

  const std::shared_ptr<session_state> sess;
  const boost::asio::any_io_executor strand;
  const options opts;
  const std::string prefix;
  const bool own_session;  // the session is this lock's alone: leaving it revokes its lease
  etcd::client& client;
  recipe::lock_machine machine;
  // watch_scope::predecessor: the watch on the key just ahead of ours while we wait, on ours while we hold (none
  // while we have no key). The session's hub does not tell us of the rest of the line.
  std::shared_ptr<watch_hub> own_watch;
  // Watches this lock used before and does not follow now, kept open and unsubscribed, the latest last (follow.cpp):
  // a lock taken in turns needs the same keys again. With own_watch, at most kept_watches.
  std::vector<std::shared_ptr<watch_hub>> spare_watches;
  static constexpr std::size_t kept_watches = 2;
  bool follows_predecessor() const { return opts.watch == watch_scope::predecessor; }
  bool ahead_complete = false;  // predecessor: the last read had every key ahead of ours (one, or none)
  static constexpr std::uint32_t quiet_probe_every = 10;  // predecessor: a waiter's probes, in session probe rounds
  mutable std::uint32_t quiet_probe_rounds = 0;

  // Read from any thread: have_lock() and fencing_token().
  std::atomic<bool> held{false};
  std::atomic<std::int64_t> token{0};
  std::atomic<clock::rep> valid_until{0};
  std::atomic<bool> handle_gone{false};  // the lock_manager object is destroyed: no more callbacks

  lock_metrics metrics;  // stats(): counted as events are delivered
  // What a REMOVED delivered now means: set around the publish() of a lease loss or of our own release.
  lock_metrics::cause removal_cause = lock_metrics::cause::removed;

  mutable std::mutex view_mutex;  // queue()/holder()/key() may be called from other threads
  std::map<std::pair<std::int64_t, std::string>, lock_entry> view;  // the machine's queue, by create revision and key
  std::set<std::pair<std::int64_t, std::string>> view_readers;  // a read-write lock's: the keys of readers in `view`
  std::string my_key;
  std::string value;  // our key's value: opts.identity until a proclaim changes it; the next key gets it too

  std::vector<std::weak_ptr<event_queue>> subscribers;
  std::vector<lock_manager::callback> acquired_callbacks, lost_callbacks, holder_callbacks;

  // ---- what the user wants
  phase stage = phase::idle;
  bool hold = false;        // keep a key in line (start(), async_acquire, async_try_acquire)
  bool try_owned = false;   // async_try_acquire made us contend: a failed try leaves the line
  bool rehold = false;      // start()/acquire came during a release: hold again once it is done
  error_code fatal;         // an error retrying cannot cure stopped contention (until the next start/acquire)
  std::uint64_t next_op = 0;
  // Lists, not vectors: erasing from a vector move-assigns the elements after it, and Boost 1.81's
  // any_completion_handler move assignment wraps the handler in itself without end (a stack overflow).
  std::list<pending<done_handler>> acquires;  // complete when we hold the lock
  std::list<pending<try_handler>> tries;      // complete after one read
  std::list<pending<done_handler>> releases;  // complete when no key of ours stands (or a release failed)
  std::list<pending<done_handler>> shutdowns; // complete when shut down (or a release failed on a shared session)
  std::vector<std::weak_ptr<boost::asio::cancellation_signal>> leaders;  // async_lead bodies: cancelled on loss

  // ---- what we know of etcd
  bool joined = false;       // on the session (its watch, lease and probe tell us)
  bool session_closed = false;
  bool working = false;      // the work coroutine runs
  bool in_line = false;      // waiting for the session to run it (session_state::request_contend)
  std::shared_ptr<manager_state> line_ticket;  // keeps us alive while in that line
  bool have_read = false;    // a read succeeded: the view follows the watch (unless reread)
  bool claimed = false;      // we are the session's contender for this name (session_state::claim)
  bool in_claim_line = false;  // we are in that name's line on the session (first or not): leave it at the end
  bool reading = false;      // a queue read (enqueue txn) is in flight: watch events wait in `early`
  bool reread = false;       // the watch lost history: read the queue again
  // The view follows the watch without a gap: false before the first read, after the watch lost history and after
  // a failed read. Until a read makes it true again, watch events are dropped (the next read contains them), or
  // wait in `early` while a read is on its way.
  bool synced = false;
  std::uint64_t resets = 0;  // on_watch_reset calls so far
  std::vector<etcd::watch_event> early;
  std::weak_ptr<boost::asio::cancellation_signal> interrupt;  // the work coroutine's: ends its waits
  std::string maybe_enqueued;  // the key of an enqueue txn whose outcome we do not know
  error_code unsure_because;   // the error an UNKNOWN event carries
  error_code release_failed;   // the last release attempt's error (empty: none failed)
  std::minstd_rand rng;        // backoff jitter only: 8 bytes, not mt19937's 2.5 KB per lock

  // ---- publishing (manager_state.cpp)
  void publish();
  void publish_removal(lock_metrics::cause why);  // publish(), a REMOVED in it counted as `why`
  lock_stats stats() const;  // lock_manager::stats(): any thread
  std::vector<lock_entry> rw_holders() const;  // rw_lock::holders(): any thread
  void deliver(std::vector<lock_event> events);
  void note_validity();
  bool lease_proven() const;
  bool holds_now() const { return held.load() && lease_proven(); }  // have_lock(), on the strand
  std::string current_value() const {
    std::lock_guard lock(view_mutex);
    return value;
  }
  std::string current_key() const {  // as published with held and token
    std::lock_guard lock(view_mutex);
    return my_key;
  }
  std::string key_value() const;  // our key's value: the value, with `slots=N;` (semaphore) or `rw=...;` (rw_lock)
  error_code check_slots();       // a semaphore's older key disagrees with our N: reported once, slots_mismatch
  bool may_hold() const;  // the machine may take its turn: we want the lock and the lease is proven
  void report(diagnostic::source_type source, diagnostic::severity_type severity, std::string message,
              error_code ec = {});

  // ---- lock_listener
  void on_watch_event(const etcd::watch_event& e) override;
  void on_watch_batch_end() override;
  void on_watch_reset() override;
  void on_lease_renewed() override;
  void on_lease_lost(std::int64_t) override;
  bool wants_probe() const override;
  bool probe_targets(std::vector<std::string>& out) const override;
  void on_probe(const probe_keys& keys, std::int64_t revision) override;
  void on_probe_failed(error_code why) override;
  void reopen_watch() override;
  void on_probe_round() override;
  void on_claim_turn() override;
  void run_contend() override;
  void on_session_closed() override;

  // ---- the work coroutine (work.cpp)
  bool wants_key() const;
  bool must_release() const;
  bool must_read() const;
  bool has_work() const;
  void kick();
  void wake();  // ends the work coroutine's current wait, if it is in one
  boost::asio::awaitable<void> work();
  boost::asio::awaitable<void> pause(int failures);
  boost::asio::awaitable<error_code> read();
  boost::asio::awaitable<error_code> release_key();
  void apply(const etcd::watch_event& e);
  // ---- watch_scope::predecessor (follow.cpp)
  boost::asio::awaitable<error_code> follow_ahead();  // the own watch on the key the machine must hear of
  boost::asio::awaitable<bool> unchanged_since_read();
  void drop_own_watch();  // and the spares
  void park_own_watch();  // it becomes a spare
  void trim_spares(std::size_t keep);  // closes the oldest spares beyond `keep`
  bool follows(const std::string& key) const;  // an event about this key concerns a partial view
  void after_read(error_code ec);
  boost::asio::awaitable<void> finish_shutdown();

  // ---- operations (operations.cpp)
  void start();
  void begin_release();  // we no longer want the lock: stop claiming it now, delete the key in the background
  void acquire(done_handler h);
  void try_acquire(try_handler h);
  void release(done_handler h);
  void shutdown(done_handler h);
  template <class Handler>
  void watch_cancellation(pending<Handler>& op);
  void cancel_op(std::uint64_t id);
  void settle_operations();
  void fail_contention(error_code ec);
  void drop_wants(error_code ec);  // we no longer want the lock: acquires and tries waiting are decided with `ec`

  // Decides every operation in `ops` not yet decided with `ec` (each completes once its condition holds).
  template <class Ops>
  static void decide(Ops& ops, error_code ec) {
    for (auto& o : ops) {
      if (o.decided) continue;
      o.decided = true;
      o.result = ec;
    }
  }
};

}  // namespace clusterlock::detail
