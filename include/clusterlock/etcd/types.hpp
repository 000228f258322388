#pragma once
// Typed requests and results of etcd's v3 API, as the JSON gateway carries them.
// Field names follow etcd's protobuf (rpc.proto, kv.proto); defaults are etcd's.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace clusterlock::etcd {

struct response_header {
  std::uint64_t cluster_id = 0;
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;
  std::uint64_t raft_term = 0;
};

struct key_value {
  std::string key;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::string value;
  std::int64_t lease = 0;
  friend bool operator==(const key_value&, const key_value&) = default;
};

/// The range_end that makes a request cover every key starting with `prefix` (etcd's GetPrefixRangeEnd).
std::string prefix_range_end(std::string_view prefix);

enum class sort_order { none, ascend, descend };
enum class sort_target { key, version, create, mod, value };

struct range_request {
  std::string key;
  std::string range_end;  ///< empty: `key` alone; prefix_range_end(key): the prefix
  std::int64_t limit = 0; ///< 0: no limit
  std::int64_t revision = 0;
  sort_order order = sort_order::none;
  sort_target target = sort_target::key;
  bool serializable = false;  ///< false: linearizable (needs the leader, proves currency)
  bool keys_only = false;
  bool count_only = false;
  std::int64_t min_create_revision = 0;
  std::int64_t max_create_revision = 0;
};

struct range_response {
  response_header header;
  std::vector<key_value> kvs;
  bool more = false;
  std::int64_t count = 0;
};

struct put_request {
  std::string key;
  std::string value;
  std::int64_t lease = 0;
  bool prev_kv = false;
};

struct put_response {
  response_header header;
  std::optional<key_value> prev_kv;
};

struct delete_range_request {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
};

struct delete_range_response {
  response_header header;
  std::int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
};

enum class compare_result { equal, greater, less, not_equal };
enum class compare_target { version, create, mod, value, lease };

/// One compare of a txn. `number` is used for version/create/mod/lease, `value` for value.
struct compare {
  compare_result result = compare_result::equal;
  compare_target target = compare_target::version;
  std::string key;
  std::string range_end;
  std::int64_t number = 0;
  std::string value;

  static compare create_revision(std::string key, compare_result r, std::int64_t rev) {
    return {r, compare_target::create, std::move(key), {}, rev, {}};
  }
  static compare mod_revision(std::string key, compare_result r, std::int64_t rev) {
    return {r, compare_target::mod, std::move(key), {}, rev, {}};
  }
  static compare version(std::string key, compare_result r, std::int64_t v) {
    return {r, compare_target::version, std::move(key), {}, v, {}};
  }
  static compare value_of(std::string key, compare_result r, std::string v) {
    return {r, compare_target::value, std::move(key), {}, 0, std::move(v)};
  }
};

using request_op = std::variant<range_request, put_request, delete_range_request>;
using response_op = std::variant<range_response, put_response, delete_range_response>;

struct txn_request {
  std::vector<compare> compares;
  std::vector<request_op> success;
  std::vector<request_op> failure;
};

struct txn_response {
  response_header header;
  bool succeeded = false;
  std::vector<response_op> responses;  ///< one per op of the branch that ran, in order
};

struct lease_grant_response {
  response_header header;
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};  ///< the TTL etcd granted (it raises small ones)
};

struct lease_keepalive_response {
  response_header header;
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};  ///< 0: the lease is gone (expired or revoked)
};

struct lease_time_to_live_response {
  response_header header;
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};  ///< -1: the lease is gone
  std::chrono::seconds granted_ttl{0};
  std::vector<std::string> keys;
};

struct lease_revoke_response {
  response_header header;
};

struct compaction_response {
  response_header header;
};

struct version_response {
  std::string server;
  std::string cluster;
};

struct health_response {
  bool healthy = false;
};

struct watch_request {
  std::string key;
  std::string range_end;
  std::int64_t start_revision = 0;  ///< 0: from now
  bool prev_kv = false;
  bool progress_notify = false;
};

enum class event_type { put, del };

struct watch_event {
  event_type type = event_type::put;
  key_value kv;  ///< for a delete: key and mod_revision (the deletion's revision)
  std::optional<key_value> prev_kv;
};

/// One message of a watch stream: a batch of events of one or more revisions, or a notice.
struct watch_response {
  response_header header;  ///< header.revision: the store's revision when this was sent
  std::int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;  ///< nonzero: history before this is gone, the watch is over
  std::string cancel_reason;
  std::vector<watch_event> events;

  /// No events, not created, not canceled: a progress notification.
  bool is_progress_notify() const noexcept {
    return events.empty() && !created && !canceled && compact_revision == 0;
  }
};

}  // namespace clusterlock::etcd
