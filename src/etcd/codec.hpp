#pragma once
// Sans-io JSON codec for etcd's v3 gateway (etcd 3.4): request structs -> JSON bodies, reply bodies -> typed
// results. No I/O here; the transport feeds whole bodies (or whole watch-stream lines) in.
//
// Wire rules (checked against etcd 3.4.23):
// - keys, values and lease key lists are standard base64 with padding, both ways; decoding is strict;
// - 64-bit integers: etcd writes strings ("revision":"3"); we accept strings and numbers, and send strings;
// - absent fields mean their default; we omit defaults when encoding;
// - enums go by name ("sort_order":"ASCEND"); on input the protobuf numbers are accepted as well.
// Decoders never throw and fail with errc::malformed_response on anything not shaped like etcd's reply
// (bad syntax, wrong types, invalid UTF-8, bad base64, out-of-range numbers, nesting deeper than etcd's own).

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/types.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusterlock::etcd::codec {

// Request bodies for POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn.
std::string encode(const range_request&);
std::string encode(const put_request&);
std::string encode(const delete_range_request&);
std::string encode(const txn_request&);
/// One txn whose success branch runs each of `txn_bodies` (encode(txn_request) results) as a nested txn (etcd 3.3+).
std::string encode_txn_batch(const std::vector<std::string_view>& txn_bodies);

// POST /v3/lease/grant (id 0: etcd picks one), /v3/lease/keepalive, /v3/lease/revoke, /v3/lease/timetolive.
std::string encode_lease_grant(std::chrono::seconds ttl, std::int64_t id = 0);
std::string encode_lease_keepalive(std::int64_t id);
std::string encode_lease_revoke(std::int64_t id);
std::string encode_lease_time_to_live(std::int64_t id, bool keys);

// POST /v3/kv/compaction, /v3/auth/authenticate, /v3/watch (the create_request).
std::string encode_compaction(std::int64_t revision, bool physical);
std::string encode_authenticate(std::string_view user, std::string_view password);
std::string encode_watch_create(const watch_request&);

// Replies of status 200.
result<range_response> decode_range(std::string_view body);
result<put_response> decode_put(std::string_view body);
result<delete_range_response> decode_delete_range(std::string_view body);
result<txn_response> decode_txn(std::string_view body);
/// The reply to encode_txn_batch: each nested txn's response, in order, with the outer txn's header (the nested ones
/// carry none). The caller checks that there is one per txn it sent.
result<std::vector<txn_response>> decode_txn_batch(std::string_view body);
result<lease_grant_response> decode_lease_grant(std::string_view body);
/// The gateway wraps it: {"result":{...}} (the unwrapped form is accepted too). A lease that is gone answers 200
/// with TTL absent, i.e. ttl 0. A streamed {"error":{...}} maps like decode_error.
result<lease_keepalive_response> decode_lease_keepalive(std::string_view body);
result<lease_revoke_response> decode_lease_revoke(std::string_view body);
/// ttl -1: the lease is gone. Note etcd's JSON name "grantedTTL".
result<lease_time_to_live_response> decode_lease_time_to_live(std::string_view body);
result<compaction_response> decode_compaction(std::string_view body);
/// The token, to be sent as the raw Authorization header.
result<std::string> decode_authenticate(std::string_view body);
/// GET /version: {"etcdserver":"3.4.23","etcdcluster":"3.4.0"} ("not_decided" right after start).
result<version_response> decode_version(std::string_view body);
/// GET /health: {"health":"true"} or "false". etcd answers 503 with the same body when unhealthy: this decoder
/// does not look at the status, so it can read both.
result<health_response> decode_health(std::string_view body);

/// One line of the /v3/watch stream. {"result":{...}} comes back as is, notices included (created, canceled,
/// compact_revision, progress); see watch_cancel_error. A streamed error {"error":{"grpc_code":14,...}} (e.g. the
/// member shutting down) or {"error":"...","code":N} becomes its error code, as decode_error maps it.
result<watch_response> decode_watch_message(std::string_view line);

/// Why etcd canceled a watch, as an error code (empty when `r` is not a cancellation):
/// compact_revision set -> compacted; a cancel_reason "rpc error: code = <Name> desc = <message>" -> the gRPC
/// mapping of decode_error (e.g. PermissionDenied, Unauthenticated, "user name is empty"); else watch_canceled.
boost::system::error_code watch_cancel_error(const watch_response& r);

/// An error reply (any non-200 status): status + body -> our error code. The body is usually
/// {"error":"...","message":"...","code":N} with N the gRPC code; it may be empty or garbage, in which case the
/// HTTP status decides. The table is in codec.cpp, next to error_from_grpc.
boost::system::error_code decode_error(unsigned http_status, std::string_view body);

/// A gRPC status code and message, as etcd sends them, -> our error code (never empty; code 0 -> server_error).
boost::system::error_code error_from_grpc(std::int64_t grpc_code, std::string_view message);

}  // namespace clusterlock::etcd::codec
