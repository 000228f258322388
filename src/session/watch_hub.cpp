#include "session/watch_hub.hpp"

#include "etcd/scope_exit.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <random>

namespace clusterlock::detail {

using from = diagnostic::source_type;
using level = diagnostic::severity_type;

namespace asio = boost::asio;

watch_hub::watch_hub(std::shared_ptr<etcd::client> client, std::string prefix,
                     std::shared_ptr<diagnostics_sink> diagnostics, std::shared_ptr<session_metrics> metrics)
    : metrics_(std::move(metrics)),
      client_(std::move(client)),
      prefix_(std::move(prefix)),
      range_end_(etcd::prefix_range_end(prefix_)),
      diagnostics_(std::move(diagnostics)),
      created_signal_(client_->get_executor(), asio::steady_timer::time_point::max()) {}

std::shared_ptr<watch_hub> watch_hub::for_range(std::shared_ptr<etcd::client> client, std::string key,
                                                std::string range_end, std::shared_ptr<diagnostics_sink> diagnostics,
                                                std::shared_ptr<session_metrics> metrics) {
  auto hub = std::make_shared<watch_hub>(std::move(client), std::move(key), std::move(diagnostics), std::move(metrics));
  hub->range_end_ = std::move(range_end);  // etcd: empty, the key alone
  return hub;
}

bool watch_hub::still_there(const member& m) const {
  auto it = members_.find(m.s);
  return it != members_.end() && it->second == m.added;
}

void watch_hub::add(const std::string& prefix, subscriber* s) {
  auto [it, fresh] = members_.try_emplace(s, 0);
  if (fresh) it->second = ++adds_;
  by_prefix_[prefix].push_back({s, it->second});
  if (!running_ && !closed_) {
    running_ = true;
    asio::co_spawn(client_->get_executor(), run(), asio::bind_cancellation_slot(stop_.slot(), asio::detached));
  }
}

void watch_hub::remove(subscriber* s) {
  members_.erase(s);
  for (auto it = by_prefix_.begin(); it != by_prefix_.end();) {
    std::erase_if(it->second, [s](const member& m) { return m.s == s; });
    it = it->second.empty() ? by_prefix_.erase(it) : std::next(it);
  }
}

asio::awaitable<result<void>> watch_hub::ready() {
  while (!created_ && !closed_) {
    co_await created_signal_.async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled when created
    if (created_ || closed_) break;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return boost::system::error_code(asio::error::operation_aborted);
  }
  if (closed_) co_return make_error_code(errc::not_started);
  co_return result<void>();
}

void watch_hub::reopen() {
  if (stream_) stream_->close();
}

void watch_hub::close() {
  closed_ = true;
  stop_.emit(asio::cancellation_type::terminal);
  reopen();
  created_signal_.cancel();
}

asio::awaitable<void> watch_hub::run() {
  auto self = shared_from_this();
  // On every exit, also by an exception at a co_await of a cancelled run(): a run_ left true would keep the hub from
  // ever starting again, and stream_ would point into a destroyed frame for reopen() to close.
  detail::scope_exit stopped([this] {
    running_ = false;
    stream_ = nullptr;
  });
  std::mt19937_64 rng{std::random_device{}()};
  const auto& retry = client_->config().retry;
  int failures = 0;
  while (!closed_) {
    etcd::watch_stream stream(*client_);
    stream_ = &stream;
    detail::scope_exit forget_stream([this] { stream_ = nullptr; });
    etcd::watch_request req{prefix_, range_end_, revision_ == 0 ? 0 : revision_ + 1, false, true};
    const auto opened = co_await stream.open(req);
    boost::system::error_code ec = opened ? boost::system::error_code{} : opened.error();
    bool reset = false;
    if (ec == errc::compacted) {
      // Changes between what we delivered and now are gone: start from now, and have everyone read afresh.
      revision_ = 0;
      reset = true;
    }
    if (!ec) {
      // A stream from now delivers what comes after its creation: remember where that is, so that a resumed
      // stream has no gap. Anything read from now on has no gap to what the stream delivers.
      if (revision_ == 0) revision_ = created_revision_ = *opened;
      created_ = true;
      created_signal_.cancel();
    }
    while (!ec && !closed_) {
      auto message = co_await stream.next(std::chrono::milliseconds::zero());
      if (!message) {
        ec = message.error();
        if (ec == errc::compacted) {
          revision_ = 0;
          reset = true;
        }
        break;
      }
      failures = 0;
      dispatch(*message);
    }
    forget_stream.run();
    if (closed_) break;
    if (metrics_) metrics_->watch_restarted();  // it opens again, below
    if (reset) {
      if (diagnostics_)
        diagnostics_->report(from::watch, level::warning,
                             "the watch on '" + prefix_ + "' lost its history (etcd compacted the revisions it was to "
                             "resume from): it starts again from now, and every lock on the session reads its queue again",
                             make_error_code(errc::compacted));
      // Readers must read after the new stream is created; they wait on ready() again.
      created_ = false;
      created_signal_.expires_at(asio::steady_timer::time_point::max());
      std::vector<member> told;
      for (const auto& [p, subs] : by_prefix_) told.insert(told.end(), subs.begin(), subs.end());
      for (const auto& m : told)
        if (still_there(m)) m.s->on_watch_reset();  // a copy, and checked: a subscriber may leave while told
      continue;
    }
    // Backoff with jitter, then resume from where the stream was.
    auto cap = std::min<std::chrono::milliseconds>(retry.max_backoff, retry.initial_backoff * (1LL << std::min(failures++, 16)));
    std::uniform_int_distribution<long long> pick(cap.count() / 2, std::max<long long>(cap.count(), 1));
    const std::chrono::milliseconds wait(pick(rng));
    if (diagnostics_)
      diagnostics_->report(from::watch, level::warning,
                           "the watch on '" + prefix_ + "' broke: " + ec.message() + "; reopening it in " +
                               std::to_string(wait.count()) + " ms from revision " + std::to_string(revision_ + 1) +
                               " (nothing is missed)",
                           ec);
    asio::steady_timer pause(client_->get_executor(), wait);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void watch_hub::dispatch(const etcd::watch_response& m) {
  if (m.events.empty()) {
    // A progress notification: the stream has delivered everything up to here.
    revision_ = std::max(revision_, m.header.revision);
    return;
  }
  std::vector<member> touched;
  for (const auto& e : m.events) {
    revision_ = std::max(revision_, e.kv.mod_revision);
    // Every prefix the key lies under: the key up to each '/' (lock names may nest, as in etcd's recipe).
    const std::string& key = e.kv.key;
    for (auto slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
      auto it = by_prefix_.find(key.substr(0, slash + 1));
      if (it == by_prefix_.end()) continue;
      // A copy, each checked before it is told: a subscriber may leave (and be destroyed) while told, or make
      // others leave or join.
      for (const auto& sub : std::vector(it->second)) {
        if (!still_there(sub)) continue;
        sub.s->on_watch_event(e);
        if (std::find_if(touched.begin(), touched.end(), [&](const member& t) { return t.s == sub.s; }) == touched.end())
          touched.push_back(sub);
      }
    }
  }
  for (const auto& sub : touched)
    if (still_there(sub)) sub.s->on_watch_batch_end();
}

}  // namespace clusterlock::detail
