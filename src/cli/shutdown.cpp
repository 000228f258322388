#include "cli/shutdown.hpp"

#include "cli/arguments.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace clusterlock::cli {

namespace {

template <class Lock>
void shut_down_then_stop_any(Lock& lock, boost::asio::io_context& io, const options& opts, const logger& log) {
  const auto bound = 2 * opts.request_timeout + std::chrono::milliseconds(500);
  auto backstop = std::make_shared<boost::asio::steady_timer>(io, bound);
  // An enqueue in flight may yet make a key we never learn: say so rather than "no key".
  const std::string key = lock.key().empty() ? "our key, if etcd made one," : "our key " + lock.key();
  // What a contender leaves behind when etcd did not confirm the delete: nobody else can hold the lock until then.
  auto left_behind = [&log, key, contend = opts.contend, ttl = opts.ttl](const std::string& why) {
    if (contend) {
      log.error("etcd did not confirm the release (" + why + "): " + key + " stands until its lease's TTL (" +
                format_duration(ttl) + ") runs out, at the latest");
    }
  };
  backstop->async_wait([&io, backstop, bound, left_behind](boost::system::error_code ec) {
    if (ec) return;
    left_behind("no answer within " + format_duration(bound));
    io.stop();
  });
  lock.async_shutdown([&io, backstop, left_behind](boost::system::error_code ec) {
    if (ec) left_behind(ec.message());
    backstop->cancel();
    io.stop();
  });
}

}  // namespace

void shut_down_then_stop(lock_manager& lock, boost::asio::io_context& io, const options& opts, const logger& log) {
  shut_down_then_stop_any(lock, io, opts, log);
}

void shut_down_then_stop(contender& lock, boost::asio::io_context& io, const options& opts, const logger& log) {
  shut_down_then_stop_any(lock, io, opts, log);
}

}  // namespace clusterlock::cli
