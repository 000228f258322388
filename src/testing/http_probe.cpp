#include "testing/http_probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace clusterlock::testing::detail {
namespace {

// Internal: every failure unwinds to http_request, which turns it into an empty optional and a reason.
struct probe_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct url_parts {
  bool tls = false;
  std::string host;
  unsigned short port = 0;
};

url_parts parse_url(const std::string& url) {
  url_parts parts;
  std::string_view rest(url);
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    parts.tls = true;
  } else {
    throw probe_error("unsupported URL " + url);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) throw probe_error("no port in URL " + url);
  parts.host = std::string(rest.substr(0, colon));
  const auto port_text = rest.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), parts.port);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) throw probe_error("bad port in URL " + url);
  return parts;
}

class deadline_clock {
 public:
  explicit deadline_clock(std::chrono::milliseconds timeout) : end_(std::chrono::steady_clock::now() + timeout) {}
  // Milliseconds left for poll(); throws once the deadline has passed.
  int remaining_ms(const char* during) const {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end_ - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw probe_error(std::string("timed out ") + during);
    return static_cast<int>(left.count());
  }

 private:
  std::chrono::steady_clock::time_point end_;
};

void wait_for(int fd, short events, const deadline_clock& deadline, const char* during) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, deadline.remaining_ms(during));
    if (r > 0) return;
    if (r == 0) throw probe_error(std::string("timed out ") + during);
    if (errno != EINTR) throw probe_error(std::string("poll: ") + std::strerror(errno));
  }
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out.empty() ? "no OpenSSL error queued" : out;
}

// One connection, plain or TLS, non-blocking underneath; every operation is bounded by the deadline.
class connection {
 public:
  connection(const url_parts& url, const tls_client_files* tls, const deadline_clock& deadline) : deadline_(deadline) {
    // The destructor does not run when the constructor throws (a refused TLS handshake is an expected outcome of
    // some tests): free what was made so far here.
    try {
      open(url, tls);
    } catch (...) {
      release();
      throw;
    }
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { release(); }

  void write_all(std::string_view data) {
    while (!data.empty()) {
      if (ssl_) {
        const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (n > 0) {
          data.remove_prefix(static_cast<std::size_t>(n));
        } else {
          wait_tls(n, "writing");
        }
      } else {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) {
          data.remove_prefix(static_cast<std::size_t>(n));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          wait_for(fd_, POLLOUT, deadline_, "writing");
        } else if (errno != EINTR) {
          throw probe_error(std::string("send: ") + std::strerror(errno));
        }
      }
    }
  }

  // Bytes read; 0 at the end of the stream.
  std::size_t read_some(char* buffer, std::size_t size) {
    for (;;) {
      if (ssl_) {
        const int n = SSL_read(ssl_, buffer, static_cast<int>(size));
        if (n > 0) return static_cast<std::size_t>(n);
        if (SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) return 0;
        wait_tls(n, "reading");
      } else {
        const ssize_t n = ::recv(fd_, buffer, size, 0);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          wait_for(fd_, POLLIN, deadline_, "reading");
        } else if (errno != EINTR) {
          throw probe_error(std::string("recv: ") + std::strerror(errno));
        }
      }
    }
  }

 private:
  void open(const url_parts& url, const tls_client_files* tls) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(url.port);
    if (::inet_pton(AF_INET, url.host.c_str(), &address.sin_addr) != 1) {
      throw probe_error("host must be a numeric IPv4 address: " + url.host);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw probe_error(std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      if (errno != EINPROGRESS) throw probe_error(std::string("connect: ") + std::strerror(errno));
      wait_for(fd_, POLLOUT, deadline_, "connecting");
      int so_error = 0;
      socklen_t length = sizeof so_error;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &length);
      if (so_error != 0) throw probe_error(std::string("connect: ") + std::strerror(so_error));
    }
    if (url.tls) start_tls(url.host, tls);
  }

  void release() noexcept {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    fd_ = -1;
  }

  void start_tls(const std::string& host, const tls_client_files* tls) {
    if (!tls || tls->ca_file.empty()) throw probe_error("https URL without a CA file");
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) throw probe_error("SSL_CTX_new: " + openssl_errors());
    // Go closes without close_notify: a plain end of stream is the end of the reply, not an attack.
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx_, tls->ca_file.c_str(), nullptr) != 1) {
      throw probe_error("loading CA " + tls->ca_file + ": " + openssl_errors());
    }
    if (!tls->cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, tls->cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, tls->key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw probe_error("loading client certificate: " + openssl_errors());
      }
    }
    ssl_ = SSL_new(ctx_);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) throw probe_error("SSL_new: " + openssl_errors());
    // The certificate must name the address we dialled (its subjectAltName), as Go clients demand.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) != 1) {
      throw probe_error("bad IP for verification: " + host);
    }
    for (;;) {
      const int r = SSL_connect(ssl_);
      if (r == 1) return;
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        throw probe_error(std::string("TLS handshake: certificate verification failed: ") +
                          X509_verify_cert_error_string(verify));
      }
      wait_tls(r, "in the TLS handshake");
    }
  }

  // After a non-positive SSL_* return: waits for the socket when OpenSSL asks to, throws otherwise.
  void wait_tls(int r, const char* during) {
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        return wait_for(fd_, POLLIN, deadline_, during);
      case SSL_ERROR_WANT_WRITE:
        return wait_for(fd_, POLLOUT, deadline_, during);
      case SSL_ERROR_SYSCALL:
        throw probe_error(std::string("TLS ") + during + ": " + (errno ? std::strerror(errno) : "end of stream") +
                          " (" + openssl_errors() + ")");
      default:
        throw probe_error(std::string("TLS ") + during + ": " + openssl_errors());
    }
  }

  const deadline_clock& deadline_;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A parsed reply head plus how to find the end of the body.
struct reply_head {
  int status = 0;
  std::size_t body_offset = 0;
  bool chunked = false;
  std::optional<std::size_t> content_length;
};

std::optional<reply_head> parse_head(const std::string& raw) {
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  reply_head head;
  head.body_offset = end + 4;
  std::string_view text(raw.data(), end);
  const auto first_line_end = text.find("\r\n");
  const std::string_view status_line = text.substr(0, first_line_end);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    throw probe_error("not an HTTP/1.x reply: " + std::string(status_line.substr(0, 80)));
  }
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, head.status);
  if (ec != std::errc()) throw probe_error("bad status line: " + std::string(status_line));
  std::string_view rest =
      first_line_end == std::string_view::npos ? std::string_view() : text.substr(first_line_end + 2);
  while (!rest.empty()) {
    const auto next = rest.find("\r\n");
    const std::string_view line = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const auto name = trim(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    if (iequals(name, "transfer-encoding") && iequals(value, "chunked")) head.chunked = true;
    if (iequals(name, "content-length")) {
      std::size_t length = 0;
      std::from_chars(value.data(), value.data() + value.size(), length);
      head.content_length = length;
    }
  }
  return head;
}

// The de-chunked body once the whole chunked body is in `raw`, nothing before that.
std::optional<std::string> dechunk(std::string_view raw) {
  std::string body;
  for (;;) {
    const auto line_end = raw.find("\r\n");
    if (line_end == std::string_view::npos) return std::nullopt;
    std::size_t size = 0;
    auto [p, ec] = std::from_chars(raw.data(), raw.data() + line_end, size, 16);
    if (ec != std::errc()) throw probe_error("bad chunk size");
    raw.remove_prefix(line_end + 2);
    if (size == 0) return body;  // trailers, if any, do not matter here
    if (raw.size() < size + 2) return std::nullopt;
    body.append(raw.substr(0, size));
    raw.remove_prefix(size + 2);
  }
}

// OpenSSL writes to the socket with write(), which raises SIGPIPE when the peer has gone; that would kill the test.
// Blocks SIGPIPE for this thread meanwhile and swallows one raised by us, without touching process-wide settings.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }

 private:
  sigset_t pipe_;
  sigset_t previous_;
  bool was_pending_ = false;
};

http_response exchange(const std::string& url_text, const http_request_options& options) {
  const url_parts url = parse_url(url_text);
  const deadline_clock deadline(options.timeout);
  connection conn(url, options.tls, deadline);

  std::string request;
  request.append(options.method).append(" ").append(options.target).append(" HTTP/1.1\r\n");
  request.append("Host: ").append(url.host).append(":").append(std::to_string(url.port)).append("\r\n");
  request.append("Connection: close\r\n");
  if (!options.authorization.empty()) request.append("Authorization: ").append(options.authorization).append("\r\n");
  if (!options.body.empty() || options.method != "GET") {
    request.append("Content-Type: application/json\r\n");
    request.append("Content-Length: ").append(std::to_string(options.body.size())).append("\r\n");
  }
  request.append("\r\n").append(options.body);
  conn.write_all(request);

  std::string raw;
  std::optional<reply_head> head;
  char buffer[16384];
  for (;;) {
    const std::size_t n = conn.read_some(buffer, sizeof buffer);
    if (n > 0) raw.append(buffer, n);
    if (!head) head = parse_head(raw);
    if (head) {
      const std::string_view body_part = std::string_view(raw).substr(head->body_offset);
      if (head->chunked) {
        if (auto body = dechunk(body_part)) return http_response{head->status, std::move(*body)};
      } else if (head->content_length && body_part.size() >= *head->content_length) {
        return http_response{head->status, std::string(body_part.substr(0, *head->content_length))};
      } else if (n == 0 && !head->content_length) {
        return http_response{head->status, std::string(body_part)};
      }
    }
    if (n == 0) throw probe_error("connection closed before the reply was complete");
  }
}

}  // namespace

std::optional<http_response> http_request(const std::string& url, const http_request_options& options,
                                          std::string* error) {
  const sigpipe_guard no_sigpipe;
  try {
    return exchange(url, options);
  } catch (const std::exception& e) {
    ERR_clear_error();
    if (error) *error = e.what();
    return std::nullopt;
  }
}

}  // namespace clusterlock::testing::detail
