#include <clusterlock/structured_log.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterlock {
namespace {

using namespace std::string_view_literals;

// --- text that is safe to write

// The length of the well-formed UTF-8 sequence at the start of `s`, or 0 when it is not one (Unicode's table 3-7:
// no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t n = 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) n = 2;
  else if (lead >= 0xe0 && lead <= 0xef) n = 3, low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
  else if (lead >= 0xf0 && lead <= 0xf4) n = 4, low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
  else return 0;
  if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  return n;
}

// `s` with each byte that starts no well-formed sequence replaced by U+FFFD: etcd's and the OS's texts reach
// messages, and a JSON reader refuses a line that is not UTF-8.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const std::size_t n = utf8_sequence_length(s);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

// The URL without its user info ("https://user:pass@host:2379" -> "https://host:2379"). By hand, not by a URL
// parser: a URL a parser refuses must lose it too.
std::string without_user_info(std::string_view url) {
  const auto scheme_end = url.find("://");
  const std::size_t authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  const auto at = url.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < authority) return std::string(url);
  return std::string(url.substr(0, authority)) + std::string(url.substr(at + 1));
}

// "2024-05-01T10:34:56.789Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day date(day);
  const hh_mm_ss<milliseconds> time(ms - day);
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()), static_cast<int>(time.subseconds().count()));
  return buffer;
}

// --- the fields, then each format's way of writing them

struct log_field {
  std::string_view key;
  std::string text;                // what it says (UTF-8)
  std::optional<unsigned> number = std::nullopt;  // http_status: in JSON a number, not a string
};

std::vector<log_field> fields_of(const diagnostic& d, std::chrono::system_clock::time_point at) {
  std::vector<log_field> out;
  out.push_back({"time"sv, rfc3339_utc(at)});
  out.push_back({"level"sv, to_string(d.severity)});
  out.push_back({"source"sv, to_string(d.source)});
  out.push_back({"msg"sv, valid_utf8(d.message)});
  if (d.error) {
    const std::string code = std::string(d.error.category().name()) + ":" + std::to_string(d.error.value());
    out.push_back({"error"sv, valid_utf8(code)});
    out.push_back({"error_message"sv, valid_utf8(d.error.message())});
  }
  if (!d.endpoint.empty()) out.push_back({"endpoint"sv, valid_utf8(without_user_info(d.endpoint))});
  if (d.http_status != 0) out.push_back({"http_status"sv, std::to_string(d.http_status), d.http_status});
  return out;
}

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '=' || c == '"' || c == '\\') return true;
  }
  return false;
}

// A logfmt value: as it is when it can be, else quoted with Go's escapes (what logfmt readers undo).
void append_logfmt_value(std::string& out, std::string_view value) {
  if (!needs_quotes(value)) {
    out += value;
    return;
  }
  out += '"';
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(u));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string as_logfmt(const std::vector<log_field>& fields) {
  std::string line;
  for (const auto& f : fields) {
    if (!line.empty()) line += ' ';
    line += f.key;
    line += '=';
    append_logfmt_value(line, f.text);
  }
  return line;
}

std::string as_json(const std::vector<log_field>& fields) {
  boost::json::object o;  // keeps the fields' order
  for (const auto& f : fields) {
    if (f.number) {
      o[f.key] = *f.number;
    } else {
      o[f.key] = f.text;
    }
  }
  return boost::json::serialize(o);
}

// All of `line` to stderr in one write(2) when the kernel takes it whole (it does for a pipe up to PIPE_BUF, and
// for a file); the rest, if any, after. Errors are dropped: there is nowhere to say them.
void write_to_stderr(std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    line.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

const char* to_string(diagnostic::source_type s) noexcept {
  using enum diagnostic::source_type;
  switch (s) {
    case request: return "request";
    case lease: return "lease";
    case keepalive: return "keepalive";
    case watch: return "watch";
    case probe: return "probe";
    case close: return "close";
    case read: return "read";
    case contention: return "contention";
    case release: return "release";
    case callback: return "callback";
  }
  return "unknown";
}

const char* to_string(diagnostic::severity_type s) noexcept {
  switch (s) {
    case diagnostic::severity_type::info: return "info";
    case diagnostic::severity_type::warning: return "warning";
    case diagnostic::severity_type::error: return "error";
  }
  return "unknown";
}

std::string format_diagnostic(const diagnostic& d, log_format format, std::chrono::system_clock::time_point at) {
  const auto fields = fields_of(d, at);
  return format == log_format::json ? as_json(fields) : as_logfmt(fields);
}

diagnostics_handler structured_log(log_format format) {
  return [format](const diagnostic& d) {
    write_to_stderr(format_diagnostic(d, format, std::chrono::system_clock::now()) + "\n");
  };
}

diagnostics_handler structured_log(std::ostream& out, log_format format) {
  return [&out, format, guard = std::make_shared<std::mutex>()](const diagnostic& d) {
    const std::string line = format_diagnostic(d, format, std::chrono::system_clock::now()) + "\n";
    const std::lock_guard lock(*guard);
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
    out.flush();
  };
}

}  // namespace clusterlock
