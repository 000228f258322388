#pragma once
// A loopback TCP relay in front of a real server (etcd) that can be told, at any moment, to misbehave: stall,
// answer garbage, cut replies in the middle, flood, or accept and never answer.
//
// It runs on the test's own executor (the thread that runs the client under test), like fake_http_server: nothing
// needs a lock and counters are read directly. A new mode applies to open connections and new ones alike.

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace clusterlock::test {

class hostile_relay {
 public:
  enum class mode {
    forward,       ///< bytes pass both ways, untouched
    stall,         ///< no byte moves on any connection (they stay open, bytes wait in the kernel); new
                   ///< connections are accepted and their requests wait too. Back to forward: all flows on.
    silent,        ///< open connections are closed; new ones are accepted, their request read, never answered
    garbage,       ///< open connections are closed; new ones get bytes that are not HTTP, then are closed
    garbage_json,  ///< open connections are closed; new ones get "200 OK" with a body that is not JSON
    cut,           ///< each read from the server is passed on only half, then the connection is closed
                   ///< (mid-reply, mid-chunk: a watch event is cut in two)
    flood,         ///< open connections are closed; new ones get "200 OK", chunked, and then 'x' without a newline
                   ///< until the client leaves (a watch gets its "created" line first)
  };

  /// Listens on 127.0.0.1 on a free port, relays to target_host:target_port (numeric IPv4).
  hostile_relay(boost::asio::any_io_executor executor, const std::string& target_host, unsigned short target_port);
  /// Closes every socket. Coroutines still suspended end when the executor runs again or is destroyed.
  ~hostile_relay();
  hostile_relay(const hostile_relay&) = delete;
  hostile_relay& operator=(const hostile_relay&) = delete;

  unsigned short port() const;
  std::string url() const;  ///< "http://127.0.0.1:PORT"

  void set_mode(mode m);
  mode current_mode() const;

  std::size_t accepted() const;          ///< connections accepted
  std::size_t open_connections() const;  ///< connections not closed yet
  std::uint64_t flood_bytes() const;     ///< flood bytes written, all connections
  std::uint64_t largest_flood() const;   ///< most flood bytes one connection took before its client left
  std::uint64_t largest_watch_flood() const;  ///< the same, of watch streams (POST /v3/watch)
  std::size_t watch_floods() const;      ///< watch streams flooded
  std::size_t cuts() const;              ///< replies cut short (mode cut)
  std::size_t watch_cuts() const;        ///< of those, on watch streams

  struct state;

 private:
  std::shared_ptr<state> state_;
};

const char* to_string(hostile_relay::mode m);

}  // namespace clusterlock::test
