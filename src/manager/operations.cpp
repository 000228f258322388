// The user's operations on a lock: each says what the user wants now, and waits for etcd to match (see work.cpp).
// Every one is defined in every state; docs/lifecycle.md has the table.

#include "manager/manager_state.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>

namespace clusterlock::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Completions are posted: never inline, never inside the manager's bookkeeping.
template <class Handler, class... Args>
void complete(const asio::any_io_executor& strand, Handler& h, Args... args) {
  auto slot = asio::get_associated_cancellation_slot(h);
  if (slot.is_connected()) slot.clear();
  asio::post(strand, asio::append(std::move(h), args...));
}

const error_code aborted = asio::error::operation_aborted;

}  // namespace

void manager_state::start() {
  if (stage == phase::shutting_down || stage == phase::shut_down) return;
  stage = phase::active;
  if (opts.contend) {
    // A release on its way ends first: its key is deleted, then a new one goes in line (a higher token).
    const bool releasing = std::any_of(releases.begin(), releases.end(), [](const auto& r) { return !r.decided; });
    (releasing ? rehold : hold) = true;
    fatal = {};
  }
  if (!joined) {
    joined = true;
    sess->join(this, prefix, !follows_predecessor());
  }
  publish();
}

template <class Handler>
void manager_state::watch_cancellation(pending<Handler>& op) {
  auto slot = asio::get_associated_cancellation_slot(op.handler);
  if (!slot.is_connected()) return;
  slot.assign([w = weak_from_this(), id = op.id, ex = strand](asio::cancellation_type type) {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) == asio::cancellation_type::none)
      return;  // total: not supported (a key may already stand; leaving the line is a side effect)
    asio::post(ex, [w, id] {
      if (auto self = w.lock()) self->cancel_op(id);
    });
  });
}

void manager_state::acquire(done_handler h) {
  error_code refused;
  if (stage == phase::shutting_down || stage == phase::shut_down || session_closed) refused = errc::not_started;
  else if (!opts.contend) refused = errc::invalid_options;  // an observer never contends
  if (refused) return complete(strand, h, refused);
  start();  // contends, and keeps contending once it holds
  if (holds_now()) return complete(strand, h, error_code{});
  acquires.push_back({++next_op, std::move(h), false, {}, false});
  watch_cancellation(acquires.back());
}

void manager_state::try_acquire(try_handler h) {
  error_code refused;
  if (stage == phase::shutting_down || stage == phase::shut_down || session_closed) refused = errc::not_started;
  else if (!opts.contend) refused = errc::invalid_options;
  if (refused) return complete(strand, h, refused, false);
  if (holds_now()) return complete(strand, h, error_code{}, true);
  if (hold && machine.has_key()) {
    return complete(strand, h, error_code{}, false);  // in line already, not holding (behind, or unsure): stay there
  }
  if (!hold && !rehold) try_owned = true;  // we contend for this try alone: a failed try leaves the line
  tries.push_back({++next_op, std::move(h), false, {}, false});
  watch_cancellation(tries.back());
  start();
  fatal = {};
}

void manager_state::release(done_handler h) {
  if (stage == phase::shut_down) return complete(strand, h, error_code{});
  releases.push_back({++next_op, std::move(h), false, {}, false});
  watch_cancellation(releases.back());
  if (stage == phase::shutting_down) return publish();  // the shutdown's release decides it (or it is keyless)
  begin_release();
}

void manager_state::drop_wants(error_code ec) {
  hold = false;
  rehold = false;
  try_owned = false;
  decide(acquires, ec);
  decide(tries, ec);
}

void manager_state::begin_release() {
  drop_wants(aborted);
  machine.begin_release();  // REMOVED now if we held the lock: from here on we do not claim it
  wake();  // a backoff or a wait for the watch must not delay the delete
  publish_removal(lock_metrics::cause::released);
}

void manager_state::shutdown(done_handler h) {
  if (stage == phase::shut_down) return complete(strand, h, error_code{});
  shutdowns.push_back({++next_op, std::move(h), false, {}, false});
  watch_cancellation(shutdowns.back());
  if (stage == phase::shutting_down) return;  // completes with the first one
  stage = phase::shutting_down;
  begin_release();
  if (!joined) {  // never started: nothing to undo in etcd
    stage = phase::shut_down;
    for (auto& w : subscribers)
      if (auto q = w.lock()) q->close();
    settle_operations();
  }
}

// The last step of a shutdown, in the work coroutine once no key of ours is left (or on a lock's own session, whose
// lease goes with it).
asio::awaitable<void> manager_state::finish_shutdown() {
  auto self = shared_from_this();
  if (in_claim_line) {
    claimed = in_claim_line = false;
    sess->unclaim(opts.name, this);  // the next contender for this name on the session may go
  }
  drop_own_watch();
  if (joined) {
    joined = false;
    co_await sess->leave(this);
  }
  stage = phase::shut_down;
  for (auto& w : subscribers)
    if (auto q = w.lock()) q->close();
  publish();
}

void manager_state::fail_contention(error_code ec) {
  fatal = ec;
  drop_wants(ec);
  if (machine.has_key()) machine.begin_release();
}

void manager_state::cancel_op(std::uint64_t id) {
  auto find = [id](auto& ops) { return std::find_if(ops.begin(), ops.end(), [id](const auto& o) { return o.id == id; }); };
  if (auto it = find(releases); it != releases.end()) {
    complete(strand, it->handler, aborted);  // the release itself goes on
    releases.erase(it);
  } else if (auto it = find(shutdowns); it != shutdowns.end()) {
    complete(strand, it->handler, aborted);  // the shutdown itself goes on
    shutdowns.erase(it);
  } else if (auto it = find(acquires); it != acquires.end() && !it->decided) {
    begin_release();  // leaves the line; the handler runs once our key is deleted
  } else if (auto it = find(tries); it != tries.end() && !it->decided) {
    begin_release();
  }
}

// Completes every operation whose condition holds. Called from publish(), after every change.
void manager_state::settle_operations() {
  const bool holding = holds_now();
  // No key of ours can stand, nor be on its way (an enqueue txn in flight would create one).
  const bool keyless = !machine.has_key() && maybe_enqueued.empty() && !reading;
  auto finish = [&](auto& ops, auto&& ready, auto&& run) {
    for (auto it = ops.begin(); it != ops.end();) {
      if (!ready(*it)) {
        ++it;
        continue;
      }
      run(*it);
      it = ops.erase(it);
    }
  };
  finish(
      acquires, [&](auto& a) { return (!a.decided && holding) || (a.decided && (keyless || a.result != aborted)); },
      [&](auto& a) { complete(strand, a.handler, a.decided ? a.result : error_code{}); });
  finish(
      tries,
      [&](auto& t) {  // a failed try that made us contend answers once its key is deleted
        return t.decided && (t.acquired || wants_key() || keyless || (t.result && t.result != aborted));
      },
      [&](auto& t) {
        const bool ok = t.acquired && holding;
        complete(strand, t.handler, t.result ? t.result : (t.acquired && !ok ? error_code(errc::lock_lost) : error_code{}), ok);
      });
  finish(
      releases, [&](auto& r) { return r.decided || (keyless && !wants_key()); },
      [&](auto& r) { complete(strand, r.handler, r.result); });
  if (rehold && releases.empty() && stage == phase::active) {
    rehold = false;
    hold = true;  // publish() kicks the work coroutine after this
  }
  const bool shutdown_failed = stage == phase::shutting_down && !own_session && release_failed;
  finish(
      shutdowns, [&](auto&) { return stage == phase::shut_down || shutdown_failed; },
      [&](auto& s) { complete(strand, s.handler, release_failed); });
}

}  // namespace clusterlock::detail
