#include "manager/event_queue.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace clusterlock::detail {

namespace asio = boost::asio;

void initiate_wait(const std::shared_ptr<event_queue>& q, event_handler h) {
  asio::dispatch(q->strand(), [q, h = std::move(h)]() mutable { q->wait(std::move(h)); });
}

void event_queue::push(const lock_event& e) {
  if (closed_) return;
  if (waiting_) {
    complete({}, e);
    return;
  }
  backlog_.push_back(e);
  if (backlog_.size() > capacity_) {
    backlog_.erase(backlog_.begin());
    dropped_ = true;
  }
}

void event_queue::close() {
  closed_ = true;
  if (waiting_ && backlog_.empty()) complete(make_error_code(errc::not_started), {});
}

void event_queue::wait(event_handler h) {
  if (waiting_) {
    // One wait at a time per subscriber; a second one is a usage error, reported rather than queued.
    asio::post(strand_, asio::append(std::move(h), make_error_code(asio::error::in_progress), lock_event{}));
    return;
  }
  waiting_.emplace(std::move(h));
  if (dropped_) {
    dropped_ = false;
    complete(make_error_code(errc::events_dropped), {});
  } else if (!backlog_.empty()) {
    auto e = std::move(backlog_.front());
    backlog_.erase(backlog_.begin());
    if (backlog_.empty()) backlog_.shrink_to_fit();  // a burst's memory is not kept for the lock's life
    complete({}, std::move(e));
  } else if (closed_) {
    complete(make_error_code(errc::not_started), {});
  } else {
    auto slot = asio::get_associated_cancellation_slot(*waiting_);
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this()](asio::cancellation_type) {
        auto self = weak.lock();
        if (!self) return;
        asio::dispatch(self->strand_, [self] {
          if (self->waiting_) self->complete(asio::error::operation_aborted, {});
        });
      });
    }
  }
}

void event_queue::complete(boost::system::error_code ec, lock_event e) {
  auto h = std::move(*waiting_);
  waiting_.reset();
  auto slot = asio::get_associated_cancellation_slot(h);
  if (slot.is_connected()) slot.clear();
  // Never inline: the manager must not run user code in the middle of its own bookkeeping. post() runs the
  // handler on its own associated executor.
  asio::post(strand_, asio::append(std::move(h), ec, std::move(e)));
}

}  // namespace clusterlock::detail
