#include "cli/shutdown.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace clusterlock::cli {

void shut_down_then_stop(lock_manager& lock, boost::asio::io_context& io, std::chrono::milliseconds request_timeout) {
  auto backstop = std::make_shared<boost::asio::steady_timer>(io, 2 * request_timeout + std::chrono::milliseconds(500));
  backstop->async_wait([&io, backstop](boost::system::error_code ec) {
    if (!ec) io.stop();
  });
  lock.async_shutdown([&io, backstop](boost::system::error_code) {
    backstop->cancel();
    io.stop();
  });
}

}  // namespace clusterlock::cli
