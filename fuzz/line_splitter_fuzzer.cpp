// Fuzzes the watch-stream splitter: a stream cut into chunks of random sizes, with the consumer taking a random
// number of lines between feeds, against a plain reference split of the whole stream.
//
// Input: byte 0 picks max_line (1..64), then repeatedly: a control byte (chunk length 0..31, and how many lines
// to take after the feed), followed by that many stream bytes.
//
// Checked:
// - every line is non-empty, has no '\n', has at most max_line bytes, and does not end in the '\r' of a "\r\n";
// - the lines come out in order and are exactly the reference's complete lines (empty ones skipped), however the
//   stream was cut: no line lost, changed, merged or split, until the splitter fails;
// - it fails (errc::response_too_large, and stays failed) exactly when the stream holds a line longer than
//   max_line; it fails no later than the feed that takes a partial line past max_line (+1 for a '\r' that may be
//   half of a "\r\n"), and returns nothing after failing;
// - memory stays bounded: once drained, pending() is the partial line only, so at most max_line + 1 bytes.

#include "transport/line_splitter.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using clusterlock::transport::line_splitter;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}
void require(bool holds, const char* what) {
  if (!holds) fail(what);
}

// The reference: the complete lines of `stream` as the splitter should hand them out.
struct reference {
  std::vector<std::string> lines;  // complete, non-empty, '\r' before '\n' removed
  std::size_t longest = 0;         // longest complete line (after removing the '\r')
  std::string tail;                // bytes after the last '\n'
};

reference split(std::string_view stream) {
  reference r;
  std::size_t start = 0;
  for (std::size_t nl = stream.find('\n'); nl != std::string_view::npos; nl = stream.find('\n', start)) {
    std::string_view line = stream.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    r.longest = std::max(r.longest, line.size());
    if (!line.empty()) r.lines.emplace_back(line);
    start = nl + 1;
  }
  r.tail = std::string(stream.substr(start));
  return r;
}

// A partial line still fits if it is at most max_line bytes, or max_line + 1 ending in the '\r' of a "\r\n".
bool partial_fits(std::string_view tail, std::size_t max_line) {
  return tail.size() <= max_line || (tail.size() == max_line + 1 && tail.back() == '\r');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_line = 1 + data[0] % 64;
  std::size_t at = 1;

  line_splitter splitter(max_line);
  std::string fed;                  // every byte fed so far
  std::string tail;                 // the bytes of `fed` after its last '\n'
  std::vector<std::string> taken;   // every line handed out
  bool failed = false;

  auto take = [&](std::size_t how_many) {
    for (std::size_t i = 0; i < how_many; ++i) {
      auto line = splitter.next_line();
      if (!line) {
        if (splitter.error()) failed = true;
        return false;
      }
      require(!line->empty(), "an empty line was handed out");
      require(line->find('\n') == std::string::npos, "a line contains '\\n'");
      require(line->size() <= max_line, "a line longer than max_line was handed out");
      taken.push_back(std::move(*line));
    }
    return true;
  };

  while (at < size && !failed) {
    const std::uint8_t control = data[at++];
    const std::size_t chunk = std::min<std::size_t>(control % 32, size - at);
    const std::size_t lines_to_take = control / 32 == 7 ? SIZE_MAX : control / 32;  // 7: drain
    const std::string_view bytes(reinterpret_cast<const char*>(data) + at, chunk);
    at += chunk;

    const auto ec = splitter.feed(bytes);
    fed.append(bytes);
    const auto newline = bytes.rfind('\n');
    tail = newline == std::string_view::npos ? tail + std::string(bytes) : std::string(bytes.substr(newline + 1));
    if (ec) {
      require(ec == clusterlock::errc::response_too_large, "feed failed with another error");
      require(splitter.error() == ec, "error() disagrees with feed()");
      failed = true;
      break;
    }
    // A feed that leaves a partial line over the bound must fail at once: that bound is what keeps memory small
    // against a peer that never sends '\n'.
    require(partial_fits(tail, max_line), "a partial line grew past max_line without failing");
    take(lines_to_take);
    if (failed) break;
    if (lines_to_take == SIZE_MAX) {
      require(splitter.pending() <= max_line + 1, "a drained splitter holds more than one partial line");
      require(splitter.pending() == tail.size(), "a drained splitter holds other than the partial line");
    }
  }
  if (!failed) take(SIZE_MAX);

  const reference ref = split(fed);
  // What came out is the reference's lines, in order (a prefix of them when the splitter failed).
  require(taken.size() <= ref.lines.size(), "more lines came out than the stream holds");
  for (std::size_t i = 0; i < taken.size(); ++i) require(taken[i] == ref.lines[i], "a line differs from the stream's");

  const bool too_long = ref.longest > max_line || !partial_fits(ref.tail, max_line);
  if (failed) {
    require(too_long, "failed on a stream without an over-long line");
    require(splitter.error() == clusterlock::errc::response_too_large, "error() lost the failure");
    require(!splitter.next_line(), "a line came out after the failure");
    require(static_cast<bool>(splitter.feed("x\n")), "the failure is not sticky");
  } else {
    require(!too_long, "an over-long line passed");
    require(taken.size() == ref.lines.size(), "lines were lost");
    require(splitter.pending() == ref.tail.size(), "pending() is not the partial line");
  }
  return 0;
}
