#pragma once
// One subscriber's events: kept in order until it asks, bounded so that a slow subscriber never blocks the
// manager nor grows without limit. Lives on the manager's strand.

#include <clusterlock/lock_manager.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace clusterlock::detail {

class event_queue : public std::enable_shared_from_this<event_queue> {
 public:
  event_queue(boost::asio::any_io_executor strand, std::size_t capacity) : strand_(std::move(strand)), capacity_(capacity) {}

  boost::asio::any_io_executor strand() const { return strand_; }

  // On the strand.
  void push(const lock_event& e);
  void close();  // no more events: waits complete with errc::not_started once the backlog is drained
  void wait(event_handler h);

 private:
  void complete(boost::system::error_code ec, lock_event e);

  boost::asio::any_io_executor strand_;
  std::size_t capacity_;
  // A vector, not a deque: libstdc++'s deque allocates 576 bytes before its first element, and most
  // subscriptions hold one or two events (a callback user never reads the default one).
  std::vector<lock_event> backlog_;
  bool dropped_ = false;
  bool closed_ = false;
  std::optional<event_handler> waiting_;
};

}  // namespace clusterlock::detail
