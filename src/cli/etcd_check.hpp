#pragma once
// The lock manager's options from the command line, and a check of etcd that says *why* it cannot be used. The
// manager retries quietly (that is its job); a command that must fail fast, or explain a long wait, asks here:
// one read of the lock's keys with the same endpoints, TLS and auth as the manager.

#include <clusterlock/etcd/client.hpp>
#include <clusterlock/options.hpp>

#include "cli/arguments.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace clusterlock::cli {

/// Reads the password (see password.hpp) when --user is given. Does not validate: the lock_manager does.
options make_options(const common_arguments& args, const std::string& name, bool contend);

/// Errors that waiting will not cure: etcd refused who we are or how we talk to it.
bool is_refusal(const boost::system::error_code& ec);

/// "cannot reach etcd at http://a:2379,http://b:2379: <why>", "etcd at ... refused us: <why>".
std::string describe_etcd_error(const boost::system::error_code& ec, const options& o);

class etcd_check {
 public:
  using callback = std::function<void(boost::system::error_code)>;

  /// Throws boost::system::system_error(errc::invalid_options) as the lock_manager does for bad options.
  etcd_check(boost::asio::any_io_executor ex, const options& o);
  ~etcd_check();
  etcd_check(const etcd_check&) = delete;
  etcd_check& operator=(const etcd_check&) = delete;

  /// Checks now and tells `on_result`; with `every`, checks again at that interval until stop().
  void start(callback on_result, std::optional<std::chrono::milliseconds> every = std::nullopt);
  void stop();

  /// How long one check can take: every attempt of the client's retry policy, at one request timeout each.
  static std::chrono::milliseconds bound(const options& o);

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace clusterlock::cli
