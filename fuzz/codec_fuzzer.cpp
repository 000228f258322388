// Fuzzes the decoding half of the etcd JSON codec: every decoder, chosen by the first input byte, gets the rest.
//
// Checked, besides "no crash, no leak, no undefined behaviour, no exception" (the codec promises not to throw):
// - what a decoder accepts is JSON: boost::json::parse takes the same text;
// - a decoder fails only with errc::malformed_response, except where etcd's error objects are mapped
//   (keepalive, watch messages): then with a non-empty error code of our category;
// - decode_error, error_from_grpc and watch_cancel_error always say something of our category (never "success"
//   for an error reply); watch_cancel_error is empty exactly when the message is neither canceled nor compacted.

#include "etcd/codec.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace codec = clusterlock::etcd::codec;
using boost::system::error_code;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<std::size_t>(input.size(), 2000)), input.data());
  std::abort();
}

bool is_json(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = 1000;
  error_code ec;
  boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, {}, options);
  return !ec;
}

bool ours(const error_code& ec) { return ec && ec.category() == clusterlock::error_category(); }

// A decoder's verdict: success only on JSON; failure only as `malformed` unless `may_map_errors`.
template <class Result>
void check(const Result& r, std::string_view body, bool may_map_errors) {
  if (r) {
    if (!is_json(body)) fail("a decoder accepted text that is not JSON", body);
    return;
  }
  if (may_map_errors) {
    if (!ours(r.error())) fail("a decoder failed with an error of another category", body);
  } else if (r.error() != clusterlock::errc::malformed_response) {
    fail("a decoder failed with something other than malformed_response", body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (selector % 16) {
    case 0: check(codec::decode_range(body), body, false); break;
    case 1: check(codec::decode_put(body), body, false); break;
    case 2: check(codec::decode_delete_range(body), body, false); break;
    case 3:
      check(codec::decode_txn(body), body, false);
      check(codec::decode_txn_batch(body), body, false);
      break;
    case 4: check(codec::decode_lease_grant(body), body, false); break;
    case 5: check(codec::decode_lease_keepalive(body), body, true); break;
    case 6: check(codec::decode_lease_revoke(body), body, false); break;
    case 7: check(codec::decode_lease_time_to_live(body), body, false); break;
    case 8: check(codec::decode_compaction(body), body, false); break;
    case 9: check(codec::decode_authenticate(body), body, false); break;
    case 10: check(codec::decode_version(body), body, false); break;
    case 11: check(codec::decode_health(body), body, false); break;
    case 12:
    case 13: {
      auto r = codec::decode_watch_message(body);
      check(r, body, true);
      if (r) {
        const error_code why = codec::watch_cancel_error(*r);
        const bool over = r->canceled || r->compact_revision != 0;
        if (over != static_cast<bool>(why)) fail("watch_cancel_error disagrees with canceled/compact_revision", body);
        if (why && !ours(why)) fail("watch_cancel_error gave an error of another category", body);
      }
      break;
    }
    case 14: {
      // Status from the next two bytes: any number an HTTP server could send, and some it could not.
      if (body.size() < 2) return 0;
      const unsigned status = static_cast<unsigned char>(body[0]) * 4u + static_cast<unsigned char>(body[1]) % 4u;
      body.remove_prefix(2);
      if (!ours(codec::decode_error(status, body))) fail("decode_error returned no error of ours", body);
      break;
    }
    case 15: {
      if (body.size() < 1) return 0;
      const std::int64_t code = static_cast<std::int8_t>(body[0]);
      body.remove_prefix(1);
      if (!ours(codec::error_from_grpc(code, body))) fail("error_from_grpc returned no error of ours", body);
      break;
    }
  }
  return 0;
}
