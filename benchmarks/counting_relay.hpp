// A TCP relay on 127.0.0.1 in front of etcd that counts what a client sends: connections, bytes, and requests.
// HTTP/1.1 (our gateway client): every request line, by path. HTTP/2 (etcdctl's gRPC): frames from the client:
// HEADERS (a new call), DATA with a payload (one gRPC message, for the small messages a lock sends), PING.
// It runs on a thread of its own, so counting costs the measured process nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace clusterlock::bench {

class counting_relay {
 public:
  enum class protocol { http1, http2 };

  struct counts {
    std::uint64_t connections = 0;
    std::uint64_t requests = 0;  ///< HTTP/1.1 requests, or HTTP/2 DATA frames with a payload (gRPC messages)
    std::uint64_t calls = 0;     ///< HTTP/2 HEADERS frames from the client (new gRPC calls); HTTP/1.1: = requests
    std::uint64_t pings = 0;     ///< HTTP/2 PING frames from the client (gRPC keepalive pings)
    std::uint64_t bytes_up = 0;
    std::uint64_t bytes_down = 0;
    std::map<std::string, std::uint64_t> by_path;  ///< HTTP/1.1 only

    counts operator-(const counts& earlier) const;
  };

  counting_relay(unsigned short target_port, protocol p);
  ~counting_relay();
  counting_relay(const counting_relay&) = delete;
  counting_relay& operator=(const counting_relay&) = delete;

  unsigned short port() const noexcept;
  std::string url() const;  ///< "http://127.0.0.1:PORT"
  counts snapshot() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace clusterlock::bench
