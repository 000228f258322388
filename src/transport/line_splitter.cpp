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
  // The newest partial line: from the last '\n' (or the start) to the end.
  auto last_newline = buffer_.rfind('\n');
  std::size_t partial = last_newline == std::string::npos ? buffer_.size() : buffer_.size() - last_newline - 1;
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
