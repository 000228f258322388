#include "recipe/predecessor.hpp"

#include <algorithm>

namespace clusterlock::recipe {

namespace {

// Keys read at a time from the end of the line that matters: a nested name's keys (`name/sub/<lease>`) lie under the
// prefix too, and are skipped. A page of nothing but those falls back to reading the whole queue.
constexpr std::int64_t page = 16;

etcd::range_request key_alone(const std::string& key) {
  etcd::range_request r;
  r.key = key;
  return r;
}

etcd::range_request line_end(const std::string& prefix, etcd::sort_order order, std::int64_t max_create_revision) {
  etcd::range_request r;
  r.key = prefix;
  r.range_end = etcd::prefix_range_end(prefix);
  r.limit = page;
  r.order = order;
  r.target = etcd::sort_target::create;
  r.max_create_revision = max_create_revision;
  return r;
}

etcd::range_response* range_at(etcd::txn_response& r, std::size_t i) {
  return i < r.responses.size() ? std::get_if<etcd::range_response>(&r.responses[i]) : nullptr;
}

queue_entry entry_of(etcd::key_value& kv) {
  return {std::move(kv.key), std::move(kv.value), kv.create_revision, kv.lease};
}

// The first key of `kvs` in the queue (not a nested name's) other than ours.
etcd::key_value* first_other(const std::string& prefix, const std::string& my_key, std::vector<etcd::key_value>& kvs) {
  auto it = std::find_if(kvs.begin(), kvs.end(),
                         [&](const etcd::key_value& kv) { return kv.key != my_key && in_queue(prefix, kv.key); });
  return it == kvs.end() ? nullptr : &*it;
}

// From the whole queue: ours and the newest other key as old as ours or older.
snapshot ahead_in(const std::string& my_key, snapshot whole) {
  snapshot s{whole.revision, {}, true};
  auto mine = std::find_if(whole.keys.begin(), whole.keys.end(), [&](const queue_entry& e) { return e.key == my_key; });
  if (mine == whole.keys.end()) return s;
  std::size_t ahead = 0;
  for (auto it = whole.keys.begin(); it != whole.keys.end(); ++it) {
    if (it == mine || it->create_revision > mine->create_revision) continue;
    s.keys.assign(1, *it);  // oldest first: the last wins
    ++ahead;
  }
  s.complete = ahead <= 1;
  s.keys.push_back(std::move(*mine));
  return s;
}

}  // namespace

boost::asio::awaitable<result<snapshot>> enqueue_behind(etcd::client& c, const std::string& prefix,
                                                        const std::string& my_key, const std::string& identity,
                                                        std::int64_t lease) {
  etcd::txn_request txn;
  txn.compares.push_back(etcd::compare::create_revision(my_key, etcd::compare_result::equal, 0));
  txn.success.push_back(etcd::put_request{my_key, identity, lease, false});
  for (auto* branch : {&txn.success, &txn.failure}) {
    branch->push_back(key_alone(my_key));
    branch->push_back(line_end(prefix, etcd::sort_order::ascend, 0));
  }
  auto r = co_await c.txn_batched(std::move(txn));
  if (!r) co_return r.error();
  const std::size_t first = r->succeeded ? 1 : 0;
  auto* mine = range_at(*r, first);
  auto* oldest = range_at(*r, first + 1);
  if (!mine || !oldest) co_return make_error_code(errc::malformed_response);
  snapshot s{r->header.revision, {}, true};
  if (mine->kvs.empty()) co_return s;  // not there (the lease went meanwhile): contend again
  auto my_entry = entry_of(mine->kvs.front());
  const auto ahead_of_us = [&](const etcd::key_value& kv) {
    return kv.key != my_key && in_queue(prefix, kv.key) && kv.create_revision <= my_entry.create_revision;
  };
  const auto& kvs = oldest->kvs;
  const bool seen = std::any_of(kvs.begin(), kvs.end(), [&](const etcd::key_value& kv) { return kv.key == my_key; });
  if (seen && std::none_of(kvs.begin(), kvs.end(), ahead_of_us)) {
    s.keys.push_back(std::move(my_entry));  // ours is the oldest (oldest first: none before it): nobody ahead
    co_return s;
  }
  co_return co_await read_ahead(c, prefix, my_key, my_entry.create_revision);
}

boost::asio::awaitable<result<snapshot>> read_ahead(etcd::client& c, const std::string& prefix,
                                                    const std::string& my_key, std::int64_t my_revision) {
  etcd::txn_request txn;  // no compares: the success branch runs, both reads at one revision
  txn.success.push_back(key_alone(my_key));
  txn.success.push_back(line_end(prefix, etcd::sort_order::descend, my_revision));
  auto r = co_await c.txn_batched(std::move(txn));
  if (!r) co_return r.error();
  auto* mine = range_at(*r, 0);
  auto* newest = range_at(*r, 1);
  if (!mine || !newest) co_return make_error_code(errc::malformed_response);
  auto* ahead = first_other(prefix, my_key, newest->kvs);
  if (!ahead && newest->more) {
    // A page of a nested name's keys: read the whole queue instead (rare: nested names under a busy lock).
    auto whole = co_await read_queue(c, prefix);
    if (!whole) co_return whole.error();
    co_return ahead_in(my_key, std::move(*whole));
  }
  // Complete: the key ahead is the only one (we are second in line), or there is none.
  const auto others = std::count_if(newest->kvs.begin(), newest->kvs.end(), [&](const etcd::key_value& kv) {
    return kv.key != my_key && in_queue(prefix, kv.key);
  });
  snapshot s{r->header.revision, {}, others <= 1 && !newest->more};
  if (ahead) s.keys.push_back(entry_of(*ahead));
  if (!mine->kvs.empty() && mine->kvs.front().create_revision == my_revision)
    s.keys.push_back(entry_of(mine->kvs.front()));
  co_return s;
}

}  // namespace clusterlock::recipe
