#include <clusterlock/error.hpp>
#include <clusterlock/testing/event_waiter.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <sstream>

namespace clusterlock::testing {

// Shared with the subscription's pending wait, which holds it weakly: a waiter that goes away stops the loop.
struct event_waiter::state {
  explicit state(event_subscription s) : subscription(std::move(s)) {}

  event_subscription subscription;
  mutable std::mutex mutex;
  std::condition_variable arrived;
  std::deque<lock_event> pending;  // not consumed by a wait yet
  std::vector<lock_event> all;
  boost::system::error_code ended;  // why the subscription ended (not_started, operation_aborted), if it did
  bool dropped = false;             // the manager dropped events: its backlog overflowed

  static void next(const std::shared_ptr<state>& self) {
    self->subscription.async_wait_event([w = std::weak_ptr<state>(self)](boost::system::error_code ec, lock_event e) {
      const auto s = w.lock();
      if (!s) return;
      {
        std::lock_guard lock(s->mutex);
        if (ec == errc::events_dropped) {
          s->dropped = true;
        } else if (ec) {
          s->ended = ec;
        } else {
          s->pending.push_back(e);
          s->all.push_back(std::move(e));
        }
      }
      s->arrived.notify_all();
      if (ec != errc::events_dropped && ec) return;
      next(s);
    });
  }

  // Consumes pending events up to the first of `kind`. Call with the mutex held.
  std::optional<lock_event> take(lock_event::kind_type kind, std::vector<lock_event>& skipped) {
    while (!pending.empty()) {
      lock_event e = std::move(pending.front());
      pending.pop_front();
      if (e.kind == kind) return e;
      skipped.push_back(std::move(e));
    }
    return std::nullopt;
  }

  std::string failure(lock_event::kind_type kind, std::chrono::milliseconds timeout,
                      const std::vector<lock_event>& skipped, const std::string& why) const {
    std::ostringstream out;
    out << "no " << to_string(kind) << " event ";
    if (!why.empty()) {
      out << "(" << why << ")";
    } else {
      out << "within " << timeout.count() << " ms";
    }
    out << "; other events meanwhile: ";
    if (skipped.empty()) out << "none";
    for (std::size_t i = 0; i < skipped.size(); ++i) out << (i ? "; " : "") << skipped[i];
    if (dropped) out << "; the manager dropped events (its event_backlog overflowed)";
    return out.str();
  }

  std::string ended_reason() const {
    return ended ? "the manager's events ended: " + ended.message() : std::string();
  }
};

event_waiter::event_waiter(lock_manager& lock) : state_(std::make_shared<state>(lock.subscribe())) {
  state::next(state_);
}

event_waiter::~event_waiter() = default;

event_result event_waiter::wait_for(lock_event::kind_type kind, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<lock_event> skipped;
  std::unique_lock lock(state_->mutex);
  for (;;) {
    if (auto e = state_->take(kind, skipped)) return event_result{std::move(*e), {}};
    if (state_->ended) return event_result{{}, state_->failure(kind, timeout, skipped, state_->ended_reason())};
    if (state_->arrived.wait_until(lock, deadline) == std::cv_status::timeout && state_->pending.empty()) {
      return event_result{{}, state_->failure(kind, timeout, skipped, {})};
    }
  }
}

event_result event_waiter::wait_for(boost::asio::io_context& io, lock_event::kind_type kind,
                                    std::chrono::milliseconds timeout) {
  using steady = std::chrono::steady_clock;
  const auto deadline = steady::now() + timeout;
  std::vector<lock_event> skipped;
  if (io.stopped()) io.restart();
  for (;;) {
    {
      std::lock_guard lock(state_->mutex);
      if (auto e = state_->take(kind, skipped)) return event_result{std::move(*e), {}};
      if (state_->ended) return event_result{{}, state_->failure(kind, timeout, skipped, state_->ended_reason())};
    }
    const auto now = steady::now();
    if (now >= deadline) {
      std::lock_guard lock(state_->mutex);
      return event_result{{}, state_->failure(kind, timeout, skipped, {})};
    }
    if (io.run_one_for(deadline - now) == 0 && io.stopped()) {
      std::lock_guard lock(state_->mutex);
      if (auto e = state_->take(kind, skipped)) return event_result{std::move(*e), {}};
      return event_result{{}, state_->failure(kind, timeout, skipped, "the io_context ran out of work")};
    }
  }
}

std::vector<lock_event> event_waiter::seen() const {
  std::lock_guard lock(state_->mutex);
  return state_->all;
}

}  // namespace clusterlock::testing
