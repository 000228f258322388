// Which process opened a loopback TCP connection, from /proc (Linux): the fault relay's per-source blackhole
// (fault_relay::blackhole_from). Blocking file reads, for the testing kit only.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace clusterlock::testing::detail {

/// One row of /proc/net/tcp or /proc/net/tcp6. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is given as IPv4, so
/// that a row of either file compares with a v4 endpoint.
struct proc_tcp_row {
  boost::asio::ip::tcp::endpoint local;
  boost::asio::ip::tcp::endpoint remote;
  std::uint64_t inode = 0;  // 0: no socket owns it any more (TIME_WAIT and the like)
};

/// Parses one line of /proc/net/tcp or /proc/net/tcp6 ("  0: 0100007F:0CEA 0100007F:A1B2 01 ... 0 12345 ...":
/// addresses as the kernel prints them, in host byte order word by word, ports in hex). Nothing for the header line
/// or a malformed one.
std::optional<proc_tcp_row> parse_proc_net_tcp_line(std::string_view line);

/// Every row of /proc/net/tcp and /proc/net/tcp6 (of this network namespace); a file that cannot be read gives none.
std::vector<proc_tcp_row> read_proc_net_tcp();

/// The inodes of the sockets process `pid` has open (its /proc/PID/fd links "socket:[N]"); empty, with *readable
/// false when given, when that directory cannot be read (the process is gone, or not ours).
std::set<std::uint64_t> socket_inodes_of(int pid, bool* readable = nullptr);

/// What a lookup found for one connection accepted on `listening` from `peer`.
enum class connection_source {
  listed,    ///< opened by one of the processes asked about
  other,     ///< opened by a socket none of them owns, and every one of them could be read
  unknown,   ///< the connecting socket's row was not found, or it is not among the readable ones and some could not be read
};

/// The processes asked about, read once (their socket inodes), and the socket table, read once: answers for many
/// connections at the cost of one scan.
class source_lookup {
 public:
  explicit source_lookup(const std::vector<int>& pids);
  /// Who opened the connection whose accepted socket has remote endpoint `peer`, accepted on `listening`: the
  /// row whose local endpoint is `peer` and remote endpoint is `listening` is the connecting socket.
  connection_source find(const boost::asio::ip::tcp::endpoint& peer,
                         const boost::asio::ip::tcp::endpoint& listening) const;

 private:
  std::vector<proc_tcp_row> rows_;
  std::set<std::uint64_t> inodes_;  // of every listed process
  bool all_readable_ = true;
};

}  // namespace clusterlock::testing::detail
