#include "transport/line_splitter.hpp"

namespace clusterlock::transport {

boost::system::error_code line_splitter::feed(std::string_view bytes) {
  if (failed_) return failed_;
  // Compact before growing so the buffer never holds more than one partial line plus this feed.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    scanned_ -= consumed_;
    consumed_ = 0;
  }
  buffer_.append(bytes);
  // The newest partial line: from the last '\n' to the end. Only the new bytes are searched: searching the whole
  // buffer made a stream without newlines cost quadratic time (seconds of CPU for a 4 MiB flood).
  const auto last_newline = bytes.rfind('\n');
  partial_ = last_newline == std::string_view::npos ? partial_ + bytes.size() : bytes.size() - last_newline - 1;
  std::size_t partial = partial_;
  // A last '\r' may be the first half of a "\r\n" cut by a chunk boundary: it is no part of the line. (Counting
  // it failed a line of exactly max_line bytes, or not, depending on where the chunks were cut.)
  if (partial > 0 && buffer_.back() == '\r') --partial;
  if (partial > max_line_) {
    failed_ = make_error_code(errc::response_too_large);
    return failed_;
  }
  // Complete lines in this feed are checked when they are taken out.
  return {};
}

std::optional<std::string> line_splitter::next_line() {
  while (!failed_) {
    auto newline = buffer_.find('\n', std::max(consumed_, scanned_));
    if (newline == std::string::npos) {
      scanned_ = buffer_.size();
      return std::nullopt;
    }
    std::string_view line(buffer_.data() + consumed_, newline - consumed_);
    consumed_ = newline + 1;
    scanned_ = consumed_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line_) {
      failed_ = make_error_code(errc::response_too_large);
      return std::nullopt;
    }
    if (!line.empty()) return std::string(line);
  }
  return std::nullopt;
}

}  // namespace clusterlock::transport
