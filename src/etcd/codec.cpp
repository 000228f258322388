#include "etcd/codec.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <charconv>
#include <exception>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace clusterlock::etcd::codec {
namespace {

namespace json = boost::json;
namespace base64 = boost::beast::detail::base64;
using boost::system::error_code;

error_code malformed() { return make_error_code(errc::malformed_response); }

// ---------------------------------------------------------------------------------------------------------------
// Base64

void append_base64(std::string& out, std::string_view bytes) {
  const std::size_t start = out.size();
  out.resize(start + base64::encoded_size(bytes.size()));
  const std::size_t written = base64::encode(out.data() + start, bytes.data(), bytes.size());
  out.resize(start + written);
}

// Beast's decoder silently stops at the first character outside the alphabet. The checks around it make it strict:
// whole quads, '=' only as the last one or two characters, and no stray bits in the last symbol (Go's encoder,
// which etcd uses, never makes any).
bool decode_base64(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  std::size_t padding = 0;
  if (!in.empty() && in.back() == '=') padding = in[in.size() - 2] == '=' ? 2 : 1;
  out.resize(base64::decoded_size(in.size()));
  const auto [written, read] = base64::decode(out.data(), in.data(), in.size());
  if (read != in.size() - padding) return false;
  out.resize(written);
  if (padding != 0) {
    const auto last_symbol = base64::get_inverse()[static_cast<unsigned char>(in[in.size() - padding - 1])];
    const int unused_bits = padding == 1 ? 0x03 : 0x0f;
    if ((last_symbol & unused_bits) != 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing requests

const char* name_of(sort_order o) {
  switch (o) {
    case sort_order::none: return "NONE";
    case sort_order::ascend: return "ASCEND";
    case sort_order::descend: return "DESCEND";
  }
  return "NONE";
}

const char* name_of(sort_target t) {
  switch (t) {
    case sort_target::key: return "KEY";
    case sort_target::version: return "VERSION";
    case sort_target::create: return "CREATE";
    case sort_target::mod: return "MOD";
    case sort_target::value: return "VALUE";
  }
  return "KEY";
}

const char* name_of(compare_result r) {
  switch (r) {
    case compare_result::equal: return "EQUAL";
    case compare_result::greater: return "GREATER";
    case compare_result::less: return "LESS";
    case compare_result::not_equal: return "NOT_EQUAL";
  }
  return "EQUAL";
}

const char* name_of(compare_target t) {
  switch (t) {
    case compare_target::version: return "VERSION";
    case compare_target::create: return "CREATE";
    case compare_target::mod: return "MOD";
    case compare_target::value: return "VALUE";
    case compare_target::lease: return "LEASE";
  }
  return "VERSION";
}

// Appends JSON text. Member names are fixed ASCII, and the values we write are base64, decimal digits or enum
// names: none needs escaping. Free text (user name, password) goes through Boost.JSON's serializer.
class writer {
 public:
  writer() { out_.reserve(128); }

  void begin_object() {
    separate();
    out_ += '{';
  }
  void begin_object(std::string_view name) {
    member(name);
    out_ += '{';
  }
  void end_object() { out_ += '}'; }
  void begin_array(std::string_view name) {
    member(name);
    out_ += '[';
  }
  void end_array() { out_ += ']'; }

  void bytes(std::string_view name, std::string_view value) {
    member(name);
    out_ += '"';
    append_base64(out_, value);
    out_ += '"';
  }
  // As a string, as etcd writes 64-bit integers: no JSON reader on the way can round it through a double.
  void integer(std::string_view name, std::int64_t value) {
    member(name);
    std::array<char, 24> digits{};
    const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out_ += '"';
    out_.append(digits.data(), end);
    out_ += '"';
  }
  void boolean(std::string_view name, bool value) {
    member(name);
    out_ += value ? "true" : "false";
  }
  void enum_name(std::string_view name, const char* value) {
    member(name);
    out_ += '"';
    out_ += value;
    out_ += '"';
  }
  void text(std::string_view name, std::string_view value) {
    member(name);
    out_ += json::serialize(json::string_view(value.data(), value.size()));
  }

  // Absent means default on etcd's side: defaults are left out.
  void bytes_unless_empty(std::string_view name, std::string_view value) {
    if (!value.empty()) bytes(name, value);
  }
  void integer_unless_zero(std::string_view name, std::int64_t value) {
    if (value != 0) integer(name, value);
  }
  void flag(std::string_view name, bool value) {
    if (value) boolean(name, true);
  }

  std::string take() { return std::move(out_); }

 private:
  void separate() {
    if (!out_.empty() && out_.back() != '{' && out_.back() != '[') out_ += ',';
  }
  void member(std::string_view name) {
    separate();
    out_ += '"';
    out_ += name;
    out_ += "\":";
  }

  std::string out_;
};

void write_fields(writer& w, const range_request& r) {
  w.bytes("key", r.key);
  w.bytes_unless_empty("range_end", r.range_end);
  w.integer_unless_zero("limit", r.limit);
  w.integer_unless_zero("revision", r.revision);
  if (r.order != sort_order::none) w.enum_name("sort_order", name_of(r.order));
  if (r.target != sort_target::key) w.enum_name("sort_target", name_of(r.target));
  w.flag("serializable", r.serializable);
  w.flag("keys_only", r.keys_only);
  w.flag("count_only", r.count_only);
  w.integer_unless_zero("min_create_revision", r.min_create_revision);
  w.integer_unless_zero("max_create_revision", r.max_create_revision);
}

void write_fields(writer& w, const put_request& r) {
  w.bytes("key", r.key);
  w.bytes_unless_empty("value", r.value);
  w.integer_unless_zero("lease", r.lease);
  w.flag("prev_kv", r.prev_kv);
}

void write_fields(writer& w, const delete_range_request& r) {
  w.bytes("key", r.key);
  w.bytes_unless_empty("range_end", r.range_end);
  w.flag("prev_kv", r.prev_kv);
}

void write_fields(writer& w, const compare& c) {
  w.bytes("key", c.key);
  w.bytes_unless_empty("range_end", c.range_end);
  if (c.target != compare_target::version) w.enum_name("target", name_of(c.target));
  if (c.result != compare_result::equal) w.enum_name("result", name_of(c.result));
  // The operand is a protobuf oneof: always sent, also when 0 or empty, so that what is compared is explicit.
  switch (c.target) {
    case compare_target::version: w.integer("version", c.number); break;
    case compare_target::create: w.integer("create_revision", c.number); break;
    case compare_target::mod: w.integer("mod_revision", c.number); break;
    case compare_target::lease: w.integer("lease", c.number); break;
    case compare_target::value: w.bytes("value", c.value); break;
  }
}

void write_op(writer& w, const request_op& op) {
  w.begin_object();
  std::visit(
      [&w](const auto& request) {
        using request_type = std::decay_t<decltype(request)>;
        if constexpr (std::is_same_v<request_type, range_request>) {
          w.begin_object("request_range");
        } else if constexpr (std::is_same_v<request_type, put_request>) {
          w.begin_object("request_put");
        } else {
          w.begin_object("request_delete_range");
        }
        write_fields(w, request);
        w.end_object();
      },
      op);
  w.end_object();
}

void write_ops(writer& w, std::string_view name, const std::vector<request_op>& ops) {
  if (ops.empty()) return;
  w.begin_array(name);
  for (const auto& op : ops) write_op(w, op);
  w.end_array();
}

template <class Request>
std::string encode_object(const Request& r) {
  writer w;
  w.begin_object();
  write_fields(w, r);
  w.end_object();
  return w.take();
}

// ---------------------------------------------------------------------------------------------------------------
// Reading replies

// etcd's deepest reply (a txn: responses / response_range / kvs / kv) nests 6 levels; anything far deeper is not
// etcd, and the bound keeps hostile input from costing stack or time.
constexpr std::size_t max_nesting = 16;

// One parsed body. Typical replies (a range of one key, a watch event) fit the stack buffer; larger ones spill to
// the heap in chunks. Everything goes at once when the document does.
class document {
 public:
  explicit document(std::string_view text) {
    json::parse_options options;
    options.max_depth = max_nesting;
    error_code ec;
    json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec, &resource_, options);
    if (!ec) value_ = std::move(parsed);
  }
  document(const document&) = delete;
  document& operator=(const document&) = delete;

  /// The top-level object; null when the text was not valid JSON or not an object.
  const json::object* object() const { return value_.if_object(); }

 private:
  unsigned char buffer_[4096];
  json::monotonic_resource resource_{buffer_};
  json::value value_ = json::value(json::storage_ptr(&resource_));
};

template <class Int>
bool parse_integer(std::string_view text, Int& out) {
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && stop == end;
}

// Integers come as strings (etcd's way) or JSON numbers. Fractions, exponents (Boost.JSON parses them as doubles),
// leading '+' or blanks, and values outside the target type are refused.
bool to_int64(const json::value& v, std::int64_t& out) {
  if (const auto* i = v.if_int64()) {
    out = *i;
    return true;
  }
  if (const auto* s = v.if_string()) return parse_integer(std::string_view(s->data(), s->size()), out);
  return false;  // uint64 (> INT64_MAX), double, bool, object, array
}

bool to_uint64(const json::value& v, std::uint64_t& out) {
  if (const auto* i = v.if_int64()) {
    if (*i < 0) return false;
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  if (const auto* u = v.if_uint64()) {
    out = *u;
    return true;
  }
  if (const auto* s = v.if_string()) return parse_integer(std::string_view(s->data(), s->size()), out);
  return false;
}

// Reads the fields of one JSON object. An absent field (or null, which protobuf's JSON mapping reads as the
// default) leaves the default; a field of the wrong type or range fails the reader, and so the decode. Unknown
// fields are ignored: newer etcd versions add some.
class reader {
 public:
  explicit reader(const json::object& o) : object_(o) {}

  bool ok() const noexcept { return ok_; }
  void fail() noexcept { ok_ = false; }

  const json::value* find(std::string_view name) const {
    const auto it = object_.find(json::string_view(name.data(), name.size()));
    if (it == object_.end() || it->value().is_null()) return nullptr;
    return &it->value();
  }

  void int64(std::string_view name, std::int64_t& out, std::int64_t min = 0) {
    if (const auto* v = find(name)) {
      std::int64_t x = 0;
      if (to_int64(*v, x) && x >= min) {
        out = x;
      } else {
        fail();
      }
    }
  }
  void uint64(std::string_view name, std::uint64_t& out) {
    if (const auto* v = find(name)) {
      if (!to_uint64(*v, out)) fail();
    }
  }
  void seconds(std::string_view name, std::chrono::seconds& out, std::int64_t min) {
    std::int64_t count = out.count();
    int64(name, count, min);
    out = std::chrono::seconds(count);
  }
  void boolean(std::string_view name, bool& out) {
    if (const auto* v = find(name)) {
      if (const auto* b = v->if_bool()) {
        out = *b;
      } else {
        fail();
      }
    }
  }
  void bytes(std::string_view name, std::string& out) {
    if (const auto* v = find(name)) {
      const auto* s = v->if_string();
      if (!s || !decode_base64(std::string_view(s->data(), s->size()), out)) fail();
    }
  }
  /// Plain text; the view lives as long as the document.
  void text(std::string_view name, std::string_view& out) {
    if (const auto* v = find(name)) {
      if (const auto* s = v->if_string()) {
        out = std::string_view(s->data(), s->size());
      } else {
        fail();
      }
    }
  }
  void text(std::string_view name, std::string& out) {
    if (const auto* v = find(name)) {
      if (const auto* s = v->if_string()) {
        out.assign(s->data(), s->size());
      } else {
        fail();
      }
    }
  }
  const json::object* object(std::string_view name) {
    if (const auto* v = find(name)) {
      if (const auto* o = v->if_object()) return o;
      fail();
    }
    return nullptr;
  }
  const json::object* required_object(std::string_view name) {
    const auto* o = object(name);
    if (!o) fail();
    return o;
  }
  const json::array* array(std::string_view name) {
    if (const auto* v = find(name)) {
      if (const auto* a = v->if_array()) return a;
      fail();
    }
    return nullptr;
  }

 private:
  const json::object& object_;
  bool ok_ = true;
};

// Every top-level reply carries a header; one without is not etcd's. Inside a txn they are read when present.
enum class header_is { required, optional };

void read_header(reader& r, response_header& h, header_is presence) {
  const json::object* o = presence == header_is::required ? r.required_object("header") : r.object("header");
  if (!o) return;
  reader fields(*o);
  fields.uint64("cluster_id", h.cluster_id);
  fields.uint64("member_id", h.member_id);
  fields.int64("revision", h.revision);
  fields.uint64("raft_term", h.raft_term);
  if (!fields.ok()) r.fail();
}

// etcd has no empty keys, so a key-value without one is not etcd's (a deletion event keeps the key too).
bool read_kv(const json::value& v, key_value& kv) {
  const auto* o = v.if_object();
  if (!o) return false;
  reader r(*o);
  r.bytes("key", kv.key);
  r.int64("create_revision", kv.create_revision);
  r.int64("mod_revision", kv.mod_revision);
  r.int64("version", kv.version);
  r.bytes("value", kv.value);
  r.int64("lease", kv.lease);
  return r.ok() && !kv.key.empty();
}

void read_kv_list(reader& r, std::string_view name, std::vector<key_value>& out) {
  const auto* a = r.array(name);
  if (!a) return;
  out.reserve(a->size());
  for (const auto& v : *a) {
    if (!read_kv(v, out.emplace_back())) {
      r.fail();
      return;
    }
  }
}

void read_optional_kv(reader& r, std::string_view name, std::optional<key_value>& out) {
  if (const auto* v = r.find(name)) {
    if (!read_kv(*v, out.emplace())) r.fail();
  }
}

bool read(const json::object& o, range_response& out, header_is header) {
  reader r(o);
  read_header(r, out.header, header);
  read_kv_list(r, "kvs", out.kvs);
  r.boolean("more", out.more);
  r.int64("count", out.count);
  return r.ok();
}

bool read(const json::object& o, put_response& out, header_is header) {
  reader r(o);
  read_header(r, out.header, header);
  read_optional_kv(r, "prev_kv", out.prev_kv);
  return r.ok();
}

bool read(const json::object& o, delete_range_response& out, header_is header) {
  reader r(o);
  read_header(r, out.header, header);
  r.int64("deleted", out.deleted);
  read_kv_list(r, "prev_kvs", out.prev_kvs);
  return r.ok();
}

// {"response_range":{...}} or "response_put" or "response_delete_range": exactly one of them.
bool read_response_op(const json::value& v, response_op& out) {
  const auto* o = v.if_object();
  if (!o) return false;
  reader r(*o);
  const json::object* range = r.object("response_range");
  const json::object* put = r.object("response_put");
  const json::object* del = r.object("response_delete_range");
  if (!r.ok() || (range != nullptr) + (put != nullptr) + (del != nullptr) != 1) return false;
  if (range) return read(*range, out.emplace<range_response>(), header_is::optional);
  if (put) return read(*put, out.emplace<put_response>(), header_is::optional);
  return read(*del, out.emplace<delete_range_response>(), header_is::optional);
}

bool read(const json::object& o, txn_response& out, header_is header = header_is::required) {
  reader r(o);
  read_header(r, out.header, header);
  r.boolean("succeeded", out.succeeded);
  if (const auto* a = r.array("responses")) {
    out.responses.reserve(a->size());
    for (const auto& v : *a) {
      if (!read_response_op(v, out.responses.emplace_back())) return false;
    }
  }
  return r.ok();
}

bool read(const json::object& o, lease_keepalive_response& out) {
  reader r(o);
  read_header(r, out.header, header_is::required);
  r.int64("ID", out.id);
  r.seconds("TTL", out.ttl, 0);
  return r.ok();
}

bool read_event(const json::value& v, watch_event& out) {
  const auto* o = v.if_object();
  if (!o) return false;
  reader r(*o);
  if (const auto* type = r.find("type")) {
    // By name as etcd writes it; the protobuf numbers (PUT 0, DELETE 1) are valid JSON for an enum too.
    const auto* name = type->if_string();
    const auto* number = type->if_int64();
    if ((name && *name == "PUT") || (number && *number == 0)) {
      out.type = event_type::put;
    } else if ((name && *name == "DELETE") || (number && *number == 1)) {
      out.type = event_type::del;
    } else {
      return false;
    }
  }
  const auto* kv = r.find("kv");
  if (!kv || !read_kv(*kv, out.kv)) return false;
  read_optional_kv(r, "prev_kv", out.prev_kv);
  return r.ok();
}

bool read(const json::object& o, watch_response& out) {
  reader r(o);
  read_header(r, out.header, header_is::required);
  r.int64("watch_id", out.watch_id, std::numeric_limits<std::int64_t>::min());  // -1 on a refused create
  r.boolean("created", out.created);
  r.boolean("canceled", out.canceled);
  r.int64("compact_revision", out.compact_revision);
  r.text("cancel_reason", out.cancel_reason);
  if (const auto* a = r.array("events")) {
    out.events.reserve(a->size());
    for (const auto& v : *a) {
      if (!read_event(v, out.events.emplace_back())) return false;
    }
  }
  return r.ok();
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

//  HTTP status, when the body holds no etcd error:
//   401 -> unauthenticated          403 -> permission_denied
//   408 -> timeout                  429 -> resource_exhausted
//   5xx (500 from a failing member, 502/503/504 from proxies on the way) -> unavailable: another endpoint or a
//        later try may work; but 501 and 505 -> not_etcd
//   anything else (404 wrong path, 400, 3xx, ...) -> not_etcd: the URL does not lead to etcd's gateway
// (A streamed error's http_code maps the same way, except that "anything else" is server_error: etcd sent it.)
error_code error_from_http_status(std::int64_t status) {
  switch (status) {
    case 401: return make_error_code(errc::unauthenticated);
    case 403: return make_error_code(errc::permission_denied);
    case 408: return make_error_code(errc::timeout);
    case 429: return make_error_code(errc::resource_exhausted);
    default: break;
  }
  if (status >= 500 && status <= 599) return make_error_code(errc::unavailable);
  return make_error_code(errc::server_error);
}

// A reply without etcd's error body: from the server, or a proxy in front of it. A proxy's 500/502/503/504 means
// etcd is down behind it; 501 and 505 say the server does not do what etcd's gateway does.
error_code error_without_etcd_body(unsigned status) {
  if (status == 501 || status == 505) return make_error_code(errc::not_etcd);
  const error_code ec = error_from_http_status(status);
  return ec == errc::server_error ? make_error_code(errc::not_etcd) : ec;
}

bool mentions(std::string_view message, std::string_view what) { return message.find(what) != std::string_view::npos; }

// The two error shapes of the gateway:
//  {"error":"msg","message":"msg","code":N}: a unary error reply, also a stream refused at its start;
//  {"error":{"grpc_code":N,"http_code":H,"message":"msg","http_status":"..."}}: an error in the middle of a stream
//  (seen: grpc_code 14 "transport is closing" when the member shuts down under an open watch).
// Empty when `o` is neither, or names no code.
std::optional<error_code> etcd_error(const json::object& o) {
  reader outer(o);
  const json::value* error = outer.find("error");
  std::int64_t grpc_code = 0;
  std::int64_t http_code = 0;
  std::string_view message;
  if (const auto* streamed = error ? error->if_object() : nullptr) {
    reader r(*streamed);
    r.int64("grpc_code", grpc_code);
    r.int64("http_code", http_code);
    r.text("message", message);
    if (!r.ok()) return std::nullopt;
  } else if (!error || error->is_string()) {
    outer.int64("code", grpc_code);
    outer.text("message", message);
    if (message.empty()) outer.text("error", message);
    if (!outer.ok()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (grpc_code > 0) return error_from_grpc(grpc_code, message);
  if (http_code > 0) return error_from_http_status(http_code);
  return std::nullopt;
}

// Runs `read` on the top-level object of `body`. A throw can only be an allocation failure; the reply is of no
// use then either, and the codec promises not to throw.
template <class T, class Read>
result<T> decode_with(std::string_view body, Read&& read) {
  try {
    document doc(body);
    const json::object* root = doc.object();
    if (!root) return malformed();
    return read(*root);
  } catch (const std::exception&) {
    return malformed();
  }
}

template <class T>
result<T> decode_simple(std::string_view body) {
  return decode_with<T>(body, [](const json::object& root) -> result<T> {
    T out;
    if (!read(root, out, header_is::required)) return malformed();
    return out;
  });
}

template <class T>
result<T> decode_header_only(std::string_view body) {
  return decode_with<T>(body, [](const json::object& root) -> result<T> {
    T out;
    reader r(root);
    read_header(r, out.header, header_is::required);
    if (!r.ok()) return malformed();
    return out;
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Encoding

std::string encode(const range_request& r) { return encode_object(r); }
std::string encode(const put_request& r) { return encode_object(r); }
std::string encode(const delete_range_request& r) { return encode_object(r); }

std::string encode(const txn_request& t) {
  writer w;
  w.begin_object();
  if (!t.compares.empty()) {
    w.begin_array("compare");
    for (const auto& c : t.compares) {
      w.begin_object();
      write_fields(w, c);
      w.end_object();
    }
    w.end_array();
  }
  write_ops(w, "success", t.success);
  write_ops(w, "failure", t.failure);
  w.end_object();
  return w.take();
}

std::string encode_lease_grant(std::chrono::seconds ttl, std::int64_t id) {
  writer w;
  w.begin_object();
  w.integer("TTL", ttl.count());
  w.integer_unless_zero("ID", id);
  w.end_object();
  return w.take();
}

std::string encode_lease_keepalive(std::int64_t id) {
  writer w;
  w.begin_object();
  w.integer("ID", id);
  w.end_object();
  return w.take();
}

std::string encode_lease_revoke(std::int64_t id) { return encode_lease_keepalive(id); }

std::string encode_lease_time_to_live(std::int64_t id, bool keys) {
  writer w;
  w.begin_object();
  w.integer("ID", id);
  w.flag("keys", keys);
  w.end_object();
  return w.take();
}

std::string encode_compaction(std::int64_t revision, bool physical) {
  writer w;
  w.begin_object();
  w.integer("revision", revision);
  w.flag("physical", physical);
  w.end_object();
  return w.take();
}

std::string encode_authenticate(std::string_view user, std::string_view password) {
  writer w;
  w.begin_object();
  w.text("name", user);
  w.text("password", password);
  w.end_object();
  return w.take();
}

std::string encode_watch_create(const watch_request& r) {
  writer w;
  w.begin_object();
  w.begin_object("create_request");
  w.bytes("key", r.key);
  w.bytes_unless_empty("range_end", r.range_end);
  w.integer_unless_zero("start_revision", r.start_revision);
  w.flag("progress_notify", r.progress_notify);
  w.flag("prev_kv", r.prev_kv);
  w.end_object();
  w.end_object();
  return w.take();
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

result<range_response> decode_range(std::string_view body) { return decode_simple<range_response>(body); }
result<put_response> decode_put(std::string_view body) { return decode_simple<put_response>(body); }
result<delete_range_response> decode_delete_range(std::string_view body) {
  return decode_simple<delete_range_response>(body);
}

result<txn_response> decode_txn(std::string_view body) {
  return decode_with<txn_response>(body, [](const json::object& root) -> result<txn_response> {
    txn_response out;
    if (!read(root, out)) return malformed();
    return out;
  });
}

std::string encode_txn_batch(const std::vector<std::string_view>& txn_bodies) {
  std::string out = R"({"success":[)";
  for (std::size_t i = 0; i < txn_bodies.size(); ++i) {
    out += i == 0 ? R"({"request_txn":)" : R"(,{"request_txn":)";
    out += txn_bodies[i];
    out += '}';
  }
  out += "]}";
  return out;
}

result<std::vector<txn_response>> decode_txn_batch(std::string_view body) {
  return decode_with<std::vector<txn_response>>(body, [](const json::object& root) -> result<std::vector<txn_response>> {
    reader r(root);
    response_header header;
    read_header(r, header, header_is::required);
    const json::array* a = r.array("responses");
    if (!r.ok() || !a) return malformed();
    std::vector<txn_response> out(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
      const auto* op = (*a)[i].if_object();
      const auto* nested = op && op->size() == 1 ? op->if_contains("response_txn") : nullptr;
      if (!nested || !nested->is_object() || !read(nested->get_object(), out[i], header_is::optional)) return malformed();
      out[i].header = header;
    }
    return out;
  });
}

result<lease_grant_response> decode_lease_grant(std::string_view body) {
  return decode_with<lease_grant_response>(body, [](const json::object& root) -> result<lease_grant_response> {
    lease_grant_response out;
    reader r(root);
    read_header(r, out.header, header_is::required);
    r.int64("ID", out.id);
    r.seconds("TTL", out.ttl, 0);
    // A granted lease always has an ID (0 means "no lease" throughout etcd's API).
    if (!r.ok() || out.id == 0) return malformed();
    return out;
  });
}

result<lease_keepalive_response> decode_lease_keepalive(std::string_view body) {
  return decode_with<lease_keepalive_response>(
      body, [](const json::object& root) -> result<lease_keepalive_response> {
        if (auto error = etcd_error(root)) return *error;
        reader r(root);
        const json::object* wrapped = r.object("result");
        if (!r.ok()) return malformed();
        lease_keepalive_response out;
        if (!read(wrapped ? *wrapped : root, out)) return malformed();
        return out;
      });
}

result<lease_revoke_response> decode_lease_revoke(std::string_view body) {
  return decode_header_only<lease_revoke_response>(body);
}

result<lease_time_to_live_response> decode_lease_time_to_live(std::string_view body) {
  return decode_with<lease_time_to_live_response>(
      body, [](const json::object& root) -> result<lease_time_to_live_response> {
        lease_time_to_live_response out;
        reader r(root);
        read_header(r, out.header, header_is::required);
        r.int64("ID", out.id);
        r.seconds("TTL", out.ttl, -1);
        r.seconds("grantedTTL", out.granted_ttl, 0);
        if (const auto* keys = r.array("keys")) {
          out.keys.reserve(keys->size());
          for (const auto& k : *keys) {
            const auto* s = k.if_string();
            if (!s || !decode_base64(std::string_view(s->data(), s->size()), out.keys.emplace_back())) {
              return malformed();
            }
          }
        }
        if (!r.ok()) return malformed();
        return out;
      });
}

result<compaction_response> decode_compaction(std::string_view body) {
  return decode_header_only<compaction_response>(body);
}

result<std::string> decode_authenticate(std::string_view body) {
  return decode_with<std::string>(body, [](const json::object& root) -> result<std::string> {
    reader r(root);
    std::string token;
    r.text("token", token);
    if (!r.ok() || token.empty()) return malformed();
    return token;
  });
}

result<version_response> decode_version(std::string_view body) {
  return decode_with<version_response>(body, [](const json::object& root) -> result<version_response> {
    reader r(root);
    version_response out;
    r.text("etcdserver", out.server);
    r.text("etcdcluster", out.cluster);
    if (!r.ok() || out.server.empty()) return malformed();
    return out;
  });
}

result<health_response> decode_health(std::string_view body) {
  return decode_with<health_response>(body, [](const json::object& root) -> result<health_response> {
    reader r(root);
    const json::value* health = r.find("health");
    if (!health) return malformed();
    // etcd 3.4 writes a string; a JSON bool is read the same way.
    if (const auto* b = health->if_bool()) return health_response{*b};
    if (const auto* s = health->if_string()) {
      if (*s == "true") return health_response{true};
      if (*s == "false") return health_response{false};
    }
    return malformed();
  });
}

result<watch_response> decode_watch_message(std::string_view line) {
  return decode_with<watch_response>(line, [](const json::object& root) -> result<watch_response> {
    reader r(root);
    if (r.find("error")) {
      if (auto error = etcd_error(root)) return *error;
      return malformed();
    }
    const json::object* message = r.required_object("result");
    watch_response out;
    if (!message || !read(*message, out)) return malformed();
    return out;
  });
}

boost::system::error_code watch_cancel_error(const watch_response& r) {
  if (r.compact_revision != 0) return make_error_code(errc::compacted);
  if (!r.canceled) return {};
  // etcd 3.4 formats the reason as a Go gRPC status: "rpc error: code = PermissionDenied desc = <message>".
  static constexpr std::array<std::string_view, 17> grpc_code_names = {
      "OK",         "Canceled",      "Unknown",  "InvalidArgument", "DeadlineExceeded", "NotFound",
      "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
      "OutOfRange", "Unimplemented", "Internal", "Unavailable",     "DataLoss",         "Unauthenticated"};
  constexpr std::string_view code_marker = "code = ";
  constexpr std::string_view desc_marker = " desc = ";
  const std::string_view reason = r.cancel_reason;
  const auto code_at = reason.find(code_marker);
  if (code_at != std::string_view::npos) {
    const auto name_at = code_at + code_marker.size();
    const auto desc_at = reason.find(desc_marker, name_at);
    const std::string_view name =
        reason.substr(name_at, desc_at == std::string_view::npos ? desc_at : desc_at - name_at);
    const std::string_view message =
        desc_at == std::string_view::npos ? std::string_view{} : reason.substr(desc_at + desc_marker.size());
    for (std::size_t code = 1; code < grpc_code_names.size(); ++code) {
      if (grpc_code_names[code] == name) return error_from_grpc(static_cast<std::int64_t>(code), message);
    }
  }
  return make_error_code(errc::watch_canceled);
}

boost::system::error_code decode_error(unsigned http_status, std::string_view body) {
  try {
    document doc(body);
    if (const json::object* root = doc.object()) {
      if (auto error = etcd_error(*root)) return *error;
    }
  } catch (const std::exception&) {
    // Only an allocation failure; the status still says something.
  }
  return error_without_etcd_body(http_status);
}

//  gRPC code (etcd's errors, etcdserver/api/v3rpc/rpctypes) -> errc:
//   1 CANCELLED           "watch canceled" -> watch_canceled; else unavailable (the member gave up, e.g. stopping)
//   3 INVALID_ARGUMENT    "user name is empty" -> unauthenticated (auth is on and no token was sent)
//                         "authentication failed" -> auth_failed; else invalid_argument
//   4 DEADLINE_EXCEEDED   timeout
//   5 NOT_FOUND           "lease not found" -> lease_not_found; else server_error
//   7 PERMISSION_DENIED   permission_denied
//   8 RESOURCE_EXHAUSTED  resource_exhausted ("too many requests", "database space exceeded")
//   9 FAILED_PRECONDITION "not leader" -> unavailable (another member or a later try serves it);
//                         else failed_precondition
//  11 OUT_OF_RANGE        "compacted" -> compacted; "future revision" -> future_revision;
//                         "too large lease TTL" -> lease_ttl_too_large; else invalid_argument
//  14 UNAVAILABLE         unavailable ("no leader", "leader changed", "request timed out", "transport is closing")
//  16 UNAUTHENTICATED     unauthenticated ("invalid auth token": expired or unknown)
//  anything else (0, 2 UNKNOWN, 6, 10, 12, 13, 15 DATA_LOSS, unknown codes) -> server_error
boost::system::error_code error_from_grpc(std::int64_t grpc_code, std::string_view message) {
  switch (grpc_code) {
    case 1:
      return make_error_code(mentions(message, "watch canceled") ? errc::watch_canceled : errc::unavailable);
    case 3:
      if (mentions(message, "user name is empty")) return make_error_code(errc::unauthenticated);
      if (mentions(message, "authentication failed")) return make_error_code(errc::auth_failed);
      return make_error_code(errc::invalid_argument);
    case 4: return make_error_code(errc::timeout);
    case 5:
      return make_error_code(mentions(message, "lease not found") ? errc::lease_not_found : errc::server_error);
    case 7: return make_error_code(errc::permission_denied);
    case 8: return make_error_code(errc::resource_exhausted);
    case 9:
      return make_error_code(mentions(message, "not leader") ? errc::unavailable : errc::failed_precondition);
    case 11:
      if (mentions(message, "compacted")) return make_error_code(errc::compacted);
      if (mentions(message, "future revision")) return make_error_code(errc::future_revision);
      if (mentions(message, "too large lease TTL")) return make_error_code(errc::lease_ttl_too_large);
      return make_error_code(errc::invalid_argument);
    case 14: return make_error_code(errc::unavailable);
    case 16: return make_error_code(errc::unauthenticated);
    default: return make_error_code(errc::server_error);
  }
}

}  // namespace clusterlock::etcd::codec
