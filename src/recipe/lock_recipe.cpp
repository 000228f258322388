#include "recipe/lock_recipe.hpp"

#include <cstdio>

namespace clusterlock::recipe {

namespace {

etcd::range_request whole_queue(const std::string& prefix) {
  etcd::range_request r;
  r.key = prefix;
  r.range_end = etcd::prefix_range_end(prefix);
  r.order = etcd::sort_order::ascend;
  r.target = etcd::sort_target::create;
  return r;
}

snapshot to_snapshot(const std::string& prefix, std::int64_t revision, std::vector<etcd::key_value>& kvs) {
  snapshot s{revision, {}};
  s.keys.reserve(kvs.size());
  for (auto& kv : kvs)
    if (in_queue(prefix, kv.key)) s.keys.push_back({std::move(kv.key), std::move(kv.value), kv.create_revision, kv.lease});
  return s;
}

}  // namespace

bool in_queue(std::string_view prefix, std::string_view key) {
  return key.size() > prefix.size() && key.starts_with(prefix) && key.find('/', prefix.size()) == std::string_view::npos;
}

std::string lock_key(const std::string& prefix, std::int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  return prefix + hex;
}

boost::asio::awaitable<result<snapshot>> enqueue(etcd::client& c, const std::string& prefix, const std::string& my_key,
                                                 const std::string& identity, std::int64_t lease) {
  etcd::txn_request txn;
  txn.compares.push_back(etcd::compare::create_revision(my_key, etcd::compare_result::equal, 0));
  txn.success.push_back(etcd::put_request{my_key, identity, lease, false});
  txn.success.push_back(whole_queue(prefix));
  txn.failure.push_back(whole_queue(prefix));
  auto r = co_await c.txn_batched(std::move(txn));  // a burst of acquisitions shares txns
  if (!r) co_return r.error();
  auto* range = r->responses.empty() ? nullptr : std::get_if<etcd::range_response>(&r->responses.back());
  if (!range) co_return make_error_code(errc::malformed_response);
  co_return to_snapshot(prefix, r->header.revision, range->kvs);
}

boost::asio::awaitable<result<snapshot>> read_queue(etcd::client& c, const std::string& prefix) {
  auto r = co_await c.range(whole_queue(prefix));
  if (!r) co_return r.error();
  co_return to_snapshot(prefix, r->header.revision, r->kvs);
}

boost::asio::awaitable<result<probe_result>> probe(etcd::client& c, const std::string& my_key) {
  etcd::range_request req;
  req.key = my_key;
  req.keys_only = true;  // linearizable (the default): it proves quorum and that our key stood after we asked
  auto r = co_await c.range(std::move(req));
  if (!r) co_return r.error();
  co_return probe_result{r->kvs.empty() ? 0 : r->kvs.front().create_revision, r->header.revision};
}

boost::asio::awaitable<result<void>> release(etcd::client& c, const std::string& my_key, std::int64_t create_revision) {
  etcd::txn_request txn;
  txn.compares.push_back(etcd::compare::create_revision(my_key, etcd::compare_result::equal, create_revision));
  txn.success.push_back(etcd::delete_range_request{my_key, {}, false});
  auto r = co_await c.txn_batched(std::move(txn));  // and a burst of releases
  if (!r) co_return r.error();
  co_return result<void>();
}

}  // namespace clusterlock::recipe
