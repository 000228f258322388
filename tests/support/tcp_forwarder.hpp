// A loopback TCP relay on its own thread: accepts on one address and pipes every connection, both ways, to a
// target. Tests use it to reach a server under an address it does not listen on (e.g. 127.0.0.2, which a TLS
// certificate naming 127.0.0.1 and localhost does not cover), without touching the server's flags.
#pragma once

#include <memory>
#include <string>

namespace clusterlock::test {

class tcp_forwarder {
 public:
  // Listens on listen_ip:listen_port (0: the kernel picks one); relays to target_ip:target_port. Throws on bind
  // failure.
  tcp_forwarder(const std::string& listen_ip, const std::string& target_ip, unsigned short target_port,
                unsigned short listen_port = 0);
  // Stops the thread and closes every socket.
  ~tcp_forwarder();
  tcp_forwarder(const tcp_forwarder&) = delete;
  tcp_forwarder& operator=(const tcp_forwarder&) = delete;

  unsigned short port() const;
  // Connections accepted so far.
  int accepted() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace clusterlock::test
