#include <clusterlock/testing/fault_relay.hpp>

#include "testing/proc_sockets.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

// Everything but the controls' hand-over runs on the relay's one thread: connections and counters need no lock.
// Every co_await result goes into a variable before it is tested (GCC 12 miscompiles a co_await in a condition).

namespace clusterlock::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using relay_clock = std::chrono::steady_clock;
using relay_mode = fault_relay::mode;

const char* to_string(fault_relay::mode m) {
  switch (m) {
    case relay_mode::pass: return "pass";
    case relay_mode::blackhole: return "blackhole";
    case relay_mode::cut: return "cut";
    case relay_mode::client_to_server_only: return "client_to_server_only";
    case relay_mode::server_to_client_only: return "server_to_client_only";
    case relay_mode::blackhole_from: return "blackhole_from";
  }
  return "?";
}

namespace {

constexpr auto relay_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t relay_read_size = 16 * 1024;
// Bytes one direction may hold (delayed) before its reader stops reading: the sender then waits on TCP's own
// flow control, and memory stays bounded however fast it sends.
constexpr std::size_t relay_queue_limit = 1024 * 1024;

// Whether `m` drops the bytes going to the server (to_server) or to the client, on a connection not cut off by
// its source (blackhole_from: those are dropped both ways, relay_connection::source_cut).
bool relay_drops(relay_mode m, bool to_server) {
  switch (m) {
    case relay_mode::pass:
    case relay_mode::blackhole_from: return false;
    case relay_mode::client_to_server_only: return !to_server;
    case relay_mode::server_to_client_only: return to_server;
    case relay_mode::blackhole:
    case relay_mode::cut: return true;
  }
  return true;
}

// What was read from one side, waiting until its time to be written to the other; `end`: that side closed.
struct relay_chunk {
  relay_clock::time_point due;
  std::string bytes;
  bool end = false;
};

// One direction of a connection.
struct relay_direction {
  explicit relay_direction(const asio::any_io_executor& ex) : wake(ex), room(ex) {}
  std::deque<relay_chunk> queue;
  std::size_t queued = 0;   // bytes in `queue`
  asio::steady_timer wake;  // the writer waits on it for a chunk or its due time; cancel() wakes it
  asio::steady_timer room;  // the reader waits on it while `queued` is over the limit
};

}  // namespace

struct relay_connection;

struct fault_relay::impl {
  asio::io_context io;  // first: destroyed last, after everything that uses it
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  unsigned short port = 0;
  relay_mode current = relay_mode::pass;
  std::chrono::milliseconds latency{0};
  std::vector<int> cut_sources;  // blackhole_from's processes, while in that mode
  std::atomic<relay_mode> shown_mode{relay_mode::pass};  // copies of current and latency for other threads
  std::atomic<long long> shown_latency_ms{0};
  std::vector<int> shown_sources;  // written and read on the relay's thread only (on_relay_thread)
  counters count;
  std::vector<std::weak_ptr<relay_connection>> connections;
  std::thread thread;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<relay_connection> c);
  asio::awaitable<void> read_side(std::shared_ptr<relay_connection> c, bool to_server);
  asio::awaitable<void> write_side(std::shared_ptr<relay_connection> c, bool to_server);
  void side_ended(relay_connection& c, bool client_side);
  void set(relay_mode m, std::chrono::milliseconds added, std::vector<int> sources = {});
  bool drops(const relay_connection& c, bool to_server) const;
  void look_up_sources(const std::vector<std::shared_ptr<relay_connection>>& open);

  // Runs f on the relay's thread and returns what it returns (bounded: that thread runs only short handlers).
  template <class F>
  auto on_relay_thread(F f) -> decltype(f()) {
    if (io.get_executor().running_in_this_thread()) return f();
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto result = task->get_future();
    asio::post(io, [task] { (*task)(); });
    if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
      throw std::runtime_error("fault_relay: its thread did not answer within 10 s");
    return result.get();
  }
};

struct relay_connection {
  relay_connection(fault_relay::impl& r, tcp::socket c)
      : relay(r), client(std::move(c)), server(client.get_executor()), up(client.get_executor()),
        down(client.get_executor()) {}

  fault_relay::impl& relay;
  tcp::socket client;
  tcp::socket server;
  relay_direction up;    // client -> server
  relay_direction down;  // server -> client
  bool client_gone = false;  // that side closed while what it said was dropped: the other side was not told
  bool source_cut = false;   // opened by a process blackhole_from() cut off: dropped both ways
  bool server_gone = false;
  bool closed = false;

  relay_direction& direction(bool to_server) { return to_server ? up : down; }
  tcp::socket& from(bool to_server) { return to_server ? client : server; }
  tcp::socket& to(bool to_server) { return to_server ? server : client; }
  bool& gone(bool client_side) { return client_side ? client_gone : server_gone; }

  // Closes both sides (reset: with RST) and ends every coroutine of this connection. Idempotent.
  void close(bool reset) {
    if (closed) return;
    closed = true;
    --relay.count.open_connections;
    error_code ignored;
    for (auto* s : {&client, &server}) {
      if (reset && s->is_open()) s->set_option(tcp::socket::linger(true, 0), ignored);
      s->close(ignored);
    }
    for (auto* d : {&up, &down}) {
      d->wake.cancel();
      d->room.cancel();
    }
  }
};

asio::awaitable<void> fault_relay::impl::accept_loop() {
  for (;;) {
    tcp::socket socket(io);
    auto [ec] = co_await acceptor.async_accept(socket, relay_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or the like: wait a little rather than spin.
      asio::steady_timer pause(io, std::chrono::milliseconds(10));
      co_await pause.async_wait(relay_tuple);
      continue;
    }
    ++count.accepted;
    ++count.open_connections;
    auto c = std::make_shared<relay_connection>(*this, std::move(socket));
    if (current == relay_mode::cut) {
      ++count.resets;
      c->close(true);
      continue;
    }
    if (current == relay_mode::blackhole_from) look_up_sources({c});  // before a byte passes
    std::erase_if(connections, [](const auto& w) { return w.expired(); });
    connections.push_back(c);
    asio::co_spawn(io, serve(c), asio::detached);
  }
}

asio::awaitable<void> fault_relay::impl::serve(std::shared_ptr<relay_connection> c) {
  auto [ec] = co_await c->server.async_connect(target, relay_tuple);
  if (c->closed) co_return;
  if (ec) {
    c->close(false);
    co_return;
  }
  c->client.set_option(tcp::no_delay(true), ec);
  c->server.set_option(tcp::no_delay(true), ec);
  for (bool to_server : {true, false}) {
    asio::co_spawn(io, read_side(c, to_server), asio::detached);
    asio::co_spawn(io, write_side(c, to_server), asio::detached);
  }
}

asio::awaitable<void> fault_relay::impl::read_side(std::shared_ptr<relay_connection> c, bool to_server) {
  auto& from = c->from(to_server);
  auto& dir = c->direction(to_server);
  std::array<char, relay_read_size> buffer;
  while (!c->closed) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), relay_tuple);
    if (c->closed) co_return;
    if (ec) {
      side_ended(*c, to_server);
      co_return;
    }
    if (drops(*c, to_server)) {
      count.bytes_dropped += n;
      continue;
    }
    dir.queue.push_back({relay_clock::now() + latency, std::string(buffer.data(), n), false});
    dir.queued += n;
    dir.wake.cancel();
    while (dir.queued > relay_queue_limit && !c->closed) {
      dir.room.expires_at(relay_clock::time_point::max());
      co_await dir.room.async_wait(relay_tuple);
    }
  }
}

// The side `client_side` closed (or failed). If the other side may hear of it, it hears after what was read
// before; if not (that direction is dropped now), the side is only marked gone and the other stays open.
void fault_relay::impl::side_ended(relay_connection& c, bool client_side) {
  const bool toward_server = client_side;
  if (drops(c, toward_server)) {
    c.gone(client_side) = true;
    error_code ignored;
    c.from(toward_server).close(ignored);
    if (c.client_gone && c.server_gone) c.close(false);
    return;
  }
  auto& dir = c.direction(toward_server);
  dir.queue.push_back({relay_clock::now() + latency, {}, true});
  dir.wake.cancel();
}

asio::awaitable<void> fault_relay::impl::write_side(std::shared_ptr<relay_connection> c, bool to_server) {
  auto& to = c->to(to_server);
  auto& dir = c->direction(to_server);
  while (!c->closed) {
    if (dir.queue.empty() || relay_clock::now() < dir.queue.front().due) {
      dir.wake.expires_at(dir.queue.empty() ? relay_clock::time_point::max() : dir.queue.front().due);
      co_await dir.wake.async_wait(relay_tuple);
      continue;
    }
    relay_chunk chunk = std::move(dir.queue.front());
    dir.queue.pop_front();
    dir.queued -= chunk.bytes.size();
    dir.room.cancel();
    if (chunk.end) {
      if (drops(*c, to_server)) {
        side_ended(*c, to_server);  // dropped now: marked gone, as if it had closed now
      } else {
        c->close(false);
      }
      co_return;
    }
    if (drops(*c, to_server) || c->gone(!to_server)) {
      count.bytes_dropped += chunk.bytes.size();
      continue;
    }
    auto [ec, n] = co_await asio::async_write(to, asio::buffer(chunk.bytes), relay_tuple);
    if (c->closed) co_return;
    if (ec && c->gone(!to_server)) continue;  // it left while unseen: drain the rest
    if (ec) {
      c->close(false);
      co_return;
    }
    (to_server ? count.bytes_to_server : count.bytes_to_client) += n;
  }
}

bool fault_relay::impl::drops(const relay_connection& c, bool to_server) const {
  return c.source_cut || relay_drops(current, to_server);
}

// Marks each of `open` cut off or not by who opened it (one scan of /proc for all of them).
void fault_relay::impl::look_up_sources(const std::vector<std::shared_ptr<relay_connection>>& open) {
  const detail::source_lookup lookup(cut_sources);
  const tcp::endpoint listening = acceptor.local_endpoint();
  for (const auto& c : open) {
    error_code ec;
    const auto peer = c->client.remote_endpoint(ec);
    const auto source = ec ? detail::connection_source::unknown : lookup.find(peer, listening);
    c->source_cut = source == detail::connection_source::listed;
    if (source == detail::connection_source::listed) ++count.sources_blackholed;
    if (source == detail::connection_source::unknown) ++count.unknown_sources;
  }
}

void fault_relay::impl::set(relay_mode m, std::chrono::milliseconds added, std::vector<int> sources) {
  current = m;
  latency = added;
  cut_sources = std::move(sources);
  shown_mode = m;
  shown_latency_ms = added.count();
  shown_sources = cut_sources;
  std::erase_if(connections, [](const auto& w) { return w.expired(); });
  std::vector<std::shared_ptr<relay_connection>> open;
  for (const auto& w : connections)
    if (auto c = w.lock(); c && !c->closed) open.push_back(std::move(c));
  for (const auto& c : open) c->source_cut = false;
  if (m == relay_mode::blackhole_from) look_up_sources(open);
  for (const auto& c : open) {
    if (m == relay_mode::cut) {
      ++count.resets;
      c->close(true);
    } else if ((c->client_gone && !drops(*c, true)) || (c->server_gone && !drops(*c, false))) {
      c->close(false);  // a side that left unseen is seen now
    }
  }
  if (m == relay_mode::cut) connections.clear();
}

fault_relay::fault_relay(const std::string& target_host, unsigned short target_port, unsigned short listen_port)
    : impl_(std::make_unique<impl>()) {
  tcp::resolver resolver(impl_->io);
  const auto found = resolver.resolve(target_host, std::to_string(target_port), tcp::resolver::numeric_service);
  impl_->target = found.begin()->endpoint();
  for (const auto& entry : found)
    if (entry.endpoint().address().is_v4()) {
      impl_->target = entry.endpoint();
      break;
    }
  const tcp::endpoint local(asio::ip::address_v4::loopback(), listen_port);
  impl_->acceptor.open(local.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(local);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([io = &impl_->io] {
    for (;;) {
      try {
        io->run();
        return;
      } catch (...) {  // nothing of ours throws out of a handler; keep relaying if something does
      }
    }
  });
}

fault_relay::~fault_relay() {
  // Stopping drops the pending handlers; the coroutine frames, their connections and sockets go with the
  // io_context (closed, no RST). run() returns after the handler it runs, and ours are short: join is bounded.
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

unsigned short fault_relay::port() const { return impl_->port; }
std::string fault_relay::url() const { return "http://127.0.0.1:" + std::to_string(impl_->port); }

void fault_relay::pass() {
  impl_->on_relay_thread([this] { impl_->set(relay_mode::pass, std::chrono::milliseconds(0)); });
}
void fault_relay::blackhole() {
  impl_->on_relay_thread([this] { impl_->set(relay_mode::blackhole, std::chrono::milliseconds(0)); });
}
void fault_relay::delay(std::chrono::milliseconds latency) {
  if (latency.count() < 0) throw std::invalid_argument("fault_relay::delay: a negative latency");
  impl_->on_relay_thread([this, latency] { impl_->set(relay_mode::pass, latency); });
}
void fault_relay::cut() {
  impl_->on_relay_thread([this] { impl_->set(relay_mode::cut, std::chrono::milliseconds(0)); });
}
void fault_relay::one_way(relay_mode m) {
  if (m != relay_mode::client_to_server_only && m != relay_mode::server_to_client_only)
    throw std::invalid_argument(std::string("fault_relay::one_way: not a one-way mode: ") + to_string(m));
  impl_->on_relay_thread([this, m] { impl_->set(m, std::chrono::milliseconds(0)); });
}

void fault_relay::blackhole_from(std::vector<int> pids) {
  if (pids.empty()) return pass();
  impl_->on_relay_thread([this, pids = std::move(pids)]() mutable {
    impl_->set(relay_mode::blackhole_from, std::chrono::milliseconds(0), std::move(pids));
  });
}
std::vector<int> fault_relay::blackholed_sources() const {
  return impl_->on_relay_thread([this] { return impl_->shown_sources; });
}

fault_relay::mode fault_relay::current_mode() const { return impl_->shown_mode.load(); }
std::chrono::milliseconds fault_relay::current_delay() const {
  return std::chrono::milliseconds(impl_->shown_latency_ms.load());
}

fault_relay::counters fault_relay::stats() const {
  return impl_->on_relay_thread([this] { return impl_->count; });
}
std::uint64_t fault_relay::accepted() const { return stats().accepted; }
std::uint64_t fault_relay::open_connections() const { return stats().open_connections; }
std::uint64_t fault_relay::resets() const { return stats().resets; }

}  // namespace clusterlock::testing
