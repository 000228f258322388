#pragma once
// Where the session's layers report trouble: rate-limited, and delivered to the user's handler by a post to the
// session's strand (never inside the library's bookkeeping), its exceptions caught and dropped.

#include <clusterlock/diagnostics.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace clusterlock::detail {

class diagnostics_sink {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds window{1};

  diagnostics_sink(boost::asio::any_io_executor strand, diagnostics_handler handler);

  bool enabled() const noexcept { return handler_ != nullptr; }
  /// On the strand. At most one message a second gets through for each source and error (the error's code, or
  /// the message when there is none); the next one that does says how many were suppressed meanwhile.
  void report(diagnostic::source_type source, diagnostic d);
  void report(diagnostic::source_type source, diagnostic::severity_type severity, std::string message,
              boost::system::error_code error = {});

 private:
  struct window_state {
    clock::time_point start;
    std::size_t suppressed = 0;
  };
  boost::asio::any_io_executor strand_;
  std::shared_ptr<const diagnostics_handler> handler_;
  std::unordered_map<std::string, window_state> windows_;
};

inline diagnostics_sink::diagnostics_sink(boost::asio::any_io_executor strand, diagnostics_handler handler)
    : strand_(std::move(strand)),
      handler_(handler ? std::make_shared<const diagnostics_handler>(std::move(handler)) : nullptr) {}

inline void diagnostics_sink::report(diagnostic::source_type source, diagnostic::severity_type severity,
                                     std::string message, boost::system::error_code error) {
  if (!handler_) return;
  diagnostic d;
  d.severity = severity;
  d.message = std::move(message);
  d.error = error;
  report(source, std::move(d));
}

inline void diagnostics_sink::report(diagnostic::source_type source, diagnostic d) {
  if (!handler_) return;
  d.source = source;
  std::string key = std::to_string(static_cast<int>(source));
  key += '|';
  if (d.error) {
    key += d.error.category().name();
    key += ':';
    key += std::to_string(d.error.value());
  } else {
    key += d.message;
  }
  const auto now = clock::now();
  if (windows_.size() > 256) {  // forget quiet kinds, so that the map stays small whatever the messages
    std::erase_if(windows_, [&](const auto& e) { return now - e.second.start >= window && e.second.suppressed == 0; });
  }
  auto [it, fresh] = windows_.try_emplace(std::move(key), window_state{now, 0});
  if (!fresh) {
    if (now - it->second.start < window) {
      ++it->second.suppressed;
      return;
    }
    if (it->second.suppressed > 0) {
      d.message += " (" + std::to_string(it->second.suppressed) + " more like it suppressed in the last " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second.start).count()) +
                   " ms)";
    }
    it->second = window_state{now, 0};
  }
  boost::asio::post(strand_, [h = handler_, d = std::move(d)] {
    try {
      (*h)(d);
    } catch (...) {  // the user's handler must not break the session: dropped, as documented
    }
  });
}

}  // namespace clusterlock::detail
