#include "transport/byte_stream.hpp"

#include "transport/transport_errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <sys/socket.h>

namespace clusterlock::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A lookup that may outlive the connect() that started it: the resolver keeps this alive until the
// system resolver returns, while connect() waits on `wake` only until its deadline.
struct pending_lookup {
  explicit pending_lookup(asio::any_io_executor executor) : resolver(executor), wake(executor) {}
  tcp::resolver resolver;
  asio::steady_timer wake;
  bool done = false;
  boost::system::error_code error;
  std::vector<tcp::endpoint> addresses;
};

// SNI for host names (RFC 6066 forbids it for addresses) and the check that the certificate names the
// host we asked for. Only enforced when the context verifies the peer.
bool set_expected_host(SSL* ssl, const endpoint& where) {
  if (is_ip_literal(where.host)) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), where.host.c_str()) == 1;
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, where.host.c_str()) == 1 && SSL_set1_host(ssl, where.host.c_str()) == 1;
}

}  // namespace

steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) noexcept {
  constexpr auto far = std::chrono::hours(24 * 365);  // far enough to mean "never", near enough not to overflow
  return steady_clock::now() + std::min<std::chrono::milliseconds>(timeout, far);
}

byte_stream::byte_stream(asio::any_io_executor executor, endpoint where, std::shared_ptr<asio::ssl::context> tls,
                         transport_options options)
    : executor_(std::move(executor)), where_(std::move(where)), tls_(std::move(tls)), options_(std::move(options)) {}

asio::awaitable<result<std::vector<tcp::endpoint>>> byte_stream::resolve(steady_clock::time_point deadline) {
  const auto port = static_cast<unsigned short>(std::stoul(where_.port));  // checked by parse_endpoint
  boost::system::error_code not_an_address;
  auto address = asio::ip::make_address(where_.host, not_an_address);
  if (!not_an_address) co_return std::vector<tcp::endpoint>{tcp::endpoint(address, port)};

  auto lookup = std::make_shared<pending_lookup>(executor_);
  lookup->wake.expires_at(deadline);
  lookup->resolver.async_resolve(where_.host, where_.port,
                                 [lookup](boost::system::error_code ec, const tcp::resolver::results_type& found) {
                                   lookup->done = true;
                                   lookup->error = ec;
                                   for (const auto& entry : found) lookup->addresses.push_back(entry.endpoint());
                                   lookup->wake.cancel();
                                 });
  auto [wait_error] = co_await lookup->wake.async_wait(use_tuple);
  if (lookup->done) {
    if (lookup->error) co_return to_transport_error(lookup->error, io_step::resolve, false);
    if (lookup->addresses.empty()) co_return make_error_code(errc::unavailable);
    co_return std::move(lookup->addresses);
  }
  lookup->resolver.cancel();
  if (wait_error == asio::error::operation_aborted) co_return wait_error;  // we were cancelled
  co_return make_error_code(errc::timeout);
}

asio::awaitable<boost::system::error_code> byte_stream::connect(steady_clock::time_point deadline) {
  close();
  if (where_.tls && !tls_) co_return make_error_code(errc::invalid_options);

  auto addresses = co_await resolve(deadline);
  if (!addresses) co_return addresses.error();

  if (where_.tls) {
    stream_.emplace(std::in_place_type<tls_stream>, executor_, *tls_);
  } else {
    stream_.emplace(std::in_place_type<plain_stream>, executor_);
  }
  auto& lowest = tcp();
  lowest.expires_at(deadline);
  auto [connect_error, connected_to] = co_await lowest.async_connect(*addresses, use_tuple);
  if (connect_error) {
    close();
    co_return to_transport_error(connect_error, io_step::connect, false);
  }
  if (options_.connects) ++*options_.connects;
  boost::system::error_code ignored;
  lowest.socket().set_option(tcp::no_delay(true), ignored);  // requests are one write each: don't wait for ACKs

  if (auto* tls = std::get_if<tls_stream>(&*stream_)) {
    if (!set_expected_host(tls->native_handle(), where_)) {
      close();
      co_return make_error_code(errc::tls_handshake_failed);
    }
    auto [handshake_error] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (handshake_error) {
      close();
      co_return to_transport_error(handshake_error, io_step::handshake, false);
    }
  }
  co_return boost::system::error_code{};
}

bool byte_stream::is_open() const noexcept {
  if (!stream_) return false;
  return std::visit([](const auto& s) { return beast::get_lowest_layer(s).socket().is_open(); }, *stream_);
}

bool byte_stream::idle_and_alive() noexcept {
  if (!is_open()) return false;
  auto fd = tcp().socket().native_handle();
  char byte;
  auto peeked = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

beast::tcp_stream& byte_stream::tcp() noexcept {
  return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, *stream_);
}

void byte_stream::close() noexcept {
  if (stream_) tcp().close();
}

}  // namespace clusterlock::transport
