#pragma once
// Sans-io splitter for a newline-delimited stream (etcd's watch replies): bytes in, whole lines out.
// Chunk boundaries of the HTTP body do not line up with lines, so bytes are buffered until a '\n'.
// Memory is bounded: a line longer than `max_line` fails with errc::response_too_large.

#include <clusterlock/error.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace clusterlock::transport {

class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line) : max_line_(max_line) {}

  /// Appends bytes. Fails (and stays failed) when the line being assembled grows past max_line.
  boost::system::error_code feed(std::string_view bytes);

  /// The next complete line, without its '\n' (and a '\r' before it); empty lines are skipped.
  std::optional<std::string> next_line();

  /// The failure that stopped the splitter (errc::response_too_large), or none.
  boost::system::error_code error() const noexcept { return failed_; }

  /// Bytes held that are not yet a complete line.
  std::size_t pending() const noexcept { return buffer_.size() - consumed_; }

 private:
  std::size_t max_line_;
  std::string buffer_;
  std::size_t consumed_ = 0;   // bytes of buffer_ already handed out
  std::size_t scanned_ = 0;    // bytes of buffer_ known to hold no '\n'
  std::size_t partial_ = 0;    // bytes after the last '\n' of buffer_ (the line being assembled)
  boost::system::error_code failed_;
};

}  // namespace clusterlock::transport
