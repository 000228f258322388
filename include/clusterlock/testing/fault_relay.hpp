#pragma once
// A TCP relay on loopback for tests: put it between a lock (or anything else) and etcd, then blackhole, delay, cut
// or heal the link, to drive UNKNOWN and recovery on demand. Part of the testing kit (CMake target
// clusterlock::testing); it may block the calling thread, so it is for tests, not for production code.
//
// The relay runs on a thread and io_context of its own: it works whatever the test does with its own executor
// (a test may even block its thread while the relay holds the link). Every control is thread-safe and returns
// once it is in force on the open connections and on new ones; it waits for the relay's thread to apply it, and
// throws std::runtime_error if that thread has not within 10 s (it runs only short handlers: it never should).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock::testing {

class fault_relay {
 public:
  /// What the relay does with the bytes of every connection, open or new.
  enum class mode {
    pass,                   ///< bytes pass both ways (after the added delay, if any)
    blackhole,              ///< connections are accepted and kept open; bytes are read and dropped both ways
    cut,                    ///< open connections were reset (RST); new ones are accepted and reset at once
    client_to_server_only,  ///< client -> server passes; server -> client is blackholed
    server_to_client_only,  ///< server -> client passes; client -> server is blackholed
    blackhole_from,         ///< connections opened by the processes given to blackhole_from() are blackholed both
                            ///< ways; all others pass
  };

  /// A snapshot of the counters, since construction.
  struct counters {
    std::uint64_t accepted = 0;          ///< connections accepted (reset ones included)
    std::uint64_t open_connections = 0;  ///< connections not closed yet
    std::uint64_t bytes_to_server = 0;   ///< bytes written to the target, all connections
    std::uint64_t bytes_to_client = 0;   ///< bytes written to clients, all connections
    std::uint64_t bytes_dropped = 0;     ///< bytes read and dropped (blackhole, one way), both directions
    std::uint64_t resets = 0;            ///< connections reset by cut() (open ones, and new ones while cut)
    std::uint64_t sources_blackholed = 0;  ///< lookups under blackhole_from() that found a listed process (per
                                           ///< connection and call: an open one is looked up again at each call)
    std::uint64_t unknown_sources = 0;     ///< lookups under blackhole_from() that could not tell: those pass
  };

  /// Listens on 127.0.0.1:listen_port (0: a free port the kernel picks) and relays every accepted connection to
  /// target_host:target_port (a name is resolved once, here), in mode pass. Starts the relay's thread. Throws
  /// boost::system::system_error when the target does not resolve or the port cannot be bound.
  /// Each connection is connected to the target when it is accepted (except while cut); when the target refuses,
  /// the client's connection is closed.
  fault_relay(const std::string& target_host, unsigned short target_port, unsigned short listen_port = 0);
  /// Stops the thread and closes every socket; bytes held in the relay are lost. Never throws; returns within a
  /// bounded time (the thread only ever runs short handlers).
  ~fault_relay();
  fault_relay(const fault_relay&) = delete;
  fault_relay& operator=(const fault_relay&) = delete;

  /// The port it listens on.
  unsigned short port() const;
  /// "http://127.0.0.1:PORT": an etcd endpoint for options::endpoints.
  std::string url() const;

  /// Heals: bytes pass both ways again, with no added delay. Connections a client or the target closed while their
  /// direction was dropped are closed now on the other side too. Bytes dropped before are lost: a stream that
  /// lost some is usually abandoned by its client, which opens a new connection.
  void pass();
  /// Drops every byte both ways, on open and new connections, without closing anything and without answering:
  /// a client notices only by its own timeouts. A side that closes meanwhile is not told to the other.
  void blackhole();
  /// Passes both ways with `latency` added to each direction, order preserved (each chunk is held until `latency`
  /// after it was read), so a request and its reply take 2 * latency more. Bytes already held keep the time they
  /// were given. delay(0ms) is pass(); a negative latency throws std::invalid_argument.
  void delay(std::chrono::milliseconds latency);
  /// Resets every open connection on both sides (SO_LINGER 0, so the peers see RST), and resets each new one as
  /// soon as it is accepted, until another mode is set.
  void cut();
  /// Passes one direction only; the other is blackholed as by blackhole(). `m` must be client_to_server_only or
  /// server_to_client_only; anything else throws std::invalid_argument.
  void one_way(mode m);

  /// A partition between processes on one host: blackholes, both ways and as blackhole() does, the connections
  /// opened by any of `pids` (open ones and new ones), and passes all others, with no added delay. Linux only: the
  /// relay looks up who opened each connection in /proc (the connecting socket is the row of /proc/net/tcp{,6}
  /// from the accepted socket's remote endpoint to the listening one; its owner, the listed process with an fd
  /// "socket:[inode]"). Open connections are looked up at the call, new ones when accepted, before any byte passes.
  /// A connection whose opener cannot be told (its row is gone, or a listed process cannot be read: it exited, or
  /// is not ours) passes, and counts in stats().unknown_sources. An empty list is pass(). pass() and the other
  /// modes end it. A process that hands a connected socket to a child is not followed; processes on other hosts
  /// are not seen at all (the relay listens on 127.0.0.1).
  void blackhole_from(std::vector<int> pids);
  /// The processes blackhole_from() cut off, while that mode is in force; empty otherwise.
  std::vector<int> blackholed_sources() const;

  /// The mode in force.
  mode current_mode() const;
  /// The added latency in force (0 except after delay()).
  std::chrono::milliseconds current_delay() const;

  /// The counters now: one consistent snapshot, taken on the relay's thread.
  counters stats() const;
  std::uint64_t accepted() const;          ///< stats().accepted
  std::uint64_t open_connections() const;  ///< stats().open_connections
  std::uint64_t resets() const;            ///< stats().resets

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// "pass", "blackhole", "cut", "client_to_server_only", "server_to_client_only", "blackhole_from".
const char* to_string(fault_relay::mode m);

}  // namespace clusterlock::testing
