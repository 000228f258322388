#include "testing/proc_sockets.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace clusterlock::testing::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// The next field separated by blanks, advancing `rest` past it.
std::string_view next_field(std::string_view& rest) {
  const auto begin = rest.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(begin);
  const auto end = std::min(rest.find_first_of(" \t"), rest.size());
  const auto field = rest.substr(0, end);
  rest.remove_prefix(end);
  return field;
}

template <class T>
bool parse_hex(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

// "0100007F:0CEA" (8 hex digits: IPv4) or 32 hex digits (IPv6), each 32-bit word printed as the host sees it in
// memory: its bytes in host order are the address's bytes in network order.
std::optional<tcp::endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto hex = text.substr(0, colon);
  unsigned short port = 0;
  if (!parse_hex(text.substr(colon + 1), port)) return std::nullopt;
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  std::array<unsigned char, 16> bytes{};
  for (std::size_t word = 0; word * 8 < hex.size(); ++word) {
    std::uint32_t value = 0;
    if (!parse_hex(hex.substr(word * 8, 8), value)) return std::nullopt;
    std::memcpy(bytes.data() + word * 4, &value, 4);
  }
  if (hex.size() == 8) {
    asio::ip::address_v4::bytes_type v4{};
    std::memcpy(v4.data(), bytes.data(), 4);
    return tcp::endpoint(asio::ip::address_v4(v4), port);
  }
  const asio::ip::address_v6 v6(bytes);
  if (v6.is_v4_mapped()) return tcp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, v6), port);
  return tcp::endpoint(v6, port);
}

}  // namespace

std::optional<proc_tcp_row> parse_proc_net_tcp_line(std::string_view line) {
  // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
  std::string_view rest = line;
  const auto slot = next_field(rest);
  if (slot.empty() || slot.back() != ':') return std::nullopt;  // the header line ("sl") too
  const auto local = parse_endpoint(next_field(rest));
  const auto remote = parse_endpoint(next_field(rest));
  if (!local || !remote) return std::nullopt;
  for (int skip = 0; skip < 6; ++skip) (void)next_field(rest);  // st, queues, timer, retransmits, uid, timeout
  std::uint64_t inode = 0;
  const auto field = next_field(rest);
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), inode);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size()) return std::nullopt;
  return proc_tcp_row{*local, *remote, inode};
}

std::vector<proc_tcp_row> read_proc_net_tcp() {
  std::vector<proc_tcp_row> rows;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
      if (auto row = parse_proc_net_tcp_line(line)) rows.push_back(*row);
  }
  return rows;
}

std::set<std::uint64_t> socket_inodes_of(int pid, bool* readable) {
  std::set<std::uint64_t> inodes;
  std::error_code ec;
  std::filesystem::directory_iterator it(std::filesystem::path("/proc") / std::to_string(pid) / "fd", ec);
  if (readable) *readable = !ec;
  if (ec) return inodes;
  constexpr std::string_view prefix = "socket:[";
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::array<char, 64> target{};
    const auto n = ::readlink(it->path().c_str(), target.data(), target.size() - 1);
    if (n <= 0) continue;  // closed meanwhile
    const std::string_view link(target.data(), static_cast<std::size_t>(n));
    if (!link.starts_with(prefix) || !link.ends_with("]")) continue;
    std::uint64_t inode = 0;
    const auto digits = link.substr(prefix.size(), link.size() - prefix.size() - 1);
    const auto [end, parse_ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
    if (parse_ec == std::errc() && end == digits.data() + digits.size()) inodes.insert(inode);
  }
  return inodes;
}

source_lookup::source_lookup(const std::vector<int>& pids) : rows_(read_proc_net_tcp()) {
  for (int pid : pids) {
    bool readable = false;
    const auto found = socket_inodes_of(pid, &readable);
    all_readable_ = all_readable_ && readable;
    inodes_.insert(found.begin(), found.end());
  }
}

connection_source source_lookup::find(const tcp::endpoint& peer, const tcp::endpoint& listening) const {
  for (const auto& row : rows_) {
    if (row.local != peer || row.remote != listening || row.inode == 0) continue;
    if (inodes_.contains(row.inode)) return connection_source::listed;
    return all_readable_ ? connection_source::other : connection_source::unknown;
  }
  return connection_source::unknown;
}

}  // namespace clusterlock::testing::detail
