#pragma once
// One watch stream over a prefix, shared by every lock under it; events go to the locks whose prefix they match.
//
// No gap, ever: after the stream is first created, a broken stream resumes from the last revision it delivered + 1.
// A lock that registers and then reads its queue (at revision R) sees every later change through the hub; events
// at or before R are already in what it read. When history was compacted under a broken stream, the hub starts
// again from now and tells every lock to read its queue again.

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "session/diagnostics_sink.hpp"
#include "session/session_metrics.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace clusterlock::detail {

class watch_hub : public std::enable_shared_from_this<watch_hub> {
 public:
  struct subscriber {
    virtual void on_watch_event(const etcd::watch_event& e) = 0;  // a change under the subscriber's prefix
    virtual void on_watch_batch_end() = 0;                        // after the events of one message
    virtual void on_watch_reset() = 0;                            // history lost: read the queue again
   protected:
    ~subscriber() = default;
  };

  /// `diagnostics` (may be null) hears of broken streams and restarts.
  watch_hub(std::shared_ptr<etcd::client> client, std::string prefix,
            std::shared_ptr<diagnostics_sink> diagnostics = nullptr, std::shared_ptr<session_metrics> metrics = nullptr);
  /// The keys in [key, range_end) (empty range_end: `key` alone), not a prefix: a lock that follows only the key
  /// ahead of its own (watch_scope::predecessor).
  static std::shared_ptr<watch_hub> for_range(std::shared_ptr<etcd::client> client, std::string key,
                                              std::string range_end, std::shared_ptr<diagnostics_sink> diagnostics,
                                              std::shared_ptr<session_metrics> metrics);

  /// `prefix` must lie under the hub's prefix. Starts the stream on first use. A subscriber may add and remove
  /// subscribers (itself too) while it is told of something; one that is removed is told nothing more.
  void add(const std::string& prefix, subscriber* s);
  void remove(subscriber* s);

  /// Completes once the stream has been created (at once after that): a queue read after this has no gap
  /// to the events that follow.
  boost::asio::awaitable<result<void>> ready();

  /// The member serving the stream may be cut off (a keepalive or probe failed): reopen it, from where it was.
  void reopen();
  void close();

  std::int64_t revision() const noexcept { return revision_; }
  /// The revision etcd was at when the stream started from "now" (first, or after history was lost; 0: not yet):
  /// it has delivered, or will, every change after it.
  std::int64_t created_revision() const noexcept { return created_revision_; }
  /// Whether it tells of changes to `key`.
  bool covers(const std::string& key) const noexcept {
    return range_end_.empty() ? key == prefix_ : prefix_ <= key && key < range_end_;
  }

 private:
  boost::asio::awaitable<void> run();
  void dispatch(const etcd::watch_response& m);

  std::shared_ptr<session_metrics> metrics_;  // told of restarts (may be null)
  std::shared_ptr<etcd::client> client_;
  std::string prefix_;
  std::string range_end_;  // prefix_range_end(prefix_), or the one key's end
  // A subscriber, as it was when told: still there, and not gone and come back (at the same address) meanwhile.
  struct member {
    subscriber* s;
    std::uint64_t added;
  };
  bool still_there(const member& m) const;

  std::unordered_map<std::string, std::vector<member>> by_prefix_;
  std::unordered_map<subscriber*, std::uint64_t> members_;  // subscriber -> its add number
  std::uint64_t adds_ = 0;
  std::shared_ptr<diagnostics_sink> diagnostics_;
  std::int64_t revision_ = 0;  // last revision delivered; 0: none yet (start from now)
  std::int64_t created_revision_ = 0;
  bool running_ = false;
  bool created_ = false;
  bool closed_ = false;
  etcd::watch_stream* stream_ = nullptr;  // the one run() reads
  boost::asio::steady_timer created_signal_;  // waiters of ready() wait on it; cancelled when created
  boost::asio::cancellation_signal stop_;
};

}  // namespace clusterlock::detail
