#include "session/watch_hub.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <random>

namespace clusterlock::detail {

namespace asio = boost::asio;

watch_hub::watch_hub(std::shared_ptr<etcd::client> client, std::string prefix)
    : client_(std::move(client)),
      prefix_(std::move(prefix)),
      created_signal_(client_->get_executor(), asio::steady_timer::time_point::max()) {}

void watch_hub::add(const std::string& prefix, subscriber* s) {
  by_prefix_[prefix].push_back(s);
  if (!running_ && !closed_) {
    running_ = true;
    asio::co_spawn(client_->get_executor(), run(), asio::bind_cancellation_slot(stop_.slot(), asio::detached));
  }
}

void watch_hub::remove(subscriber* s) {
  for (auto it = by_prefix_.begin(); it != by_prefix_.end();) {
    std::erase(it->second, s);
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
  std::mt19937_64 rng{std::random_device{}()};
  const auto& retry = client_->config().retry;
  int failures = 0;
  while (!closed_) {
    etcd::watch_stream stream(*client_);
    stream_ = &stream;
    etcd::watch_request req{prefix_, etcd::prefix_range_end(prefix_), revision_ == 0 ? 0 : revision_ + 1, false, true};
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
      if (revision_ == 0) revision_ = *opened;
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
    stream_ = nullptr;
    if (closed_) break;
    if (reset) {
      // Readers must read after the new stream is created; they wait on ready() again.
      created_ = false;
      created_signal_.expires_at(asio::steady_timer::time_point::max());
      for (auto& [p, subs] : std::unordered_map(by_prefix_))
        for (auto* s : subs) s->on_watch_reset();
      continue;
    }
    // Backoff with jitter, then resume from where the stream was.
    auto cap = std::min<std::chrono::milliseconds>(retry.max_backoff, retry.initial_backoff * (1LL << std::min(failures++, 16)));
    std::uniform_int_distribution<long long> pick(cap.count() / 2, std::max<long long>(cap.count(), 1));
    asio::steady_timer pause(client_->get_executor(), std::chrono::milliseconds(pick(rng)));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  running_ = false;
}

void watch_hub::dispatch(const etcd::watch_response& m) {
  if (m.events.empty()) {
    // A progress notification: the stream has delivered everything up to here.
    revision_ = std::max(revision_, m.header.revision);
    return;
  }
  std::vector<subscriber*> touched;
  for (const auto& e : m.events) {
    revision_ = std::max(revision_, e.kv.mod_revision);
    // Every prefix the key lies under: the key up to each '/' (lock names may nest, as in etcd's recipe).
    const std::string& key = e.kv.key;
    for (auto slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
      auto it = by_prefix_.find(key.substr(0, slash + 1));
      if (it == by_prefix_.end()) continue;
      for (auto* s : std::vector(it->second)) {  // a copy: a subscriber may leave while told
        s->on_watch_event(e);
        if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(s);
      }
    }
  }
  for (auto* s : touched) s->on_watch_batch_end();
}

}  // namespace clusterlock::detail
