#include "recipe/predecessor.hpp"

#include <algorithm>
#include <optional>

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

// Another key of the queue (not a nested name's) as old as ours or older.
bool ahead_of(const std::string& prefix, const std::string& my_key, std::int64_t my_revision, const etcd::key_value& kv) {
  return kv.key != my_key && in_queue(prefix, kv.key) && kv.create_revision <= my_revision;
}

// The partial view at `revision` from our key's range and a page of the queue's newest keys (descending by create
// revision); none when the page held no key ahead but there is more (a nested name's keys): read the whole queue.
std::optional<snapshot> ahead_from(const std::string& prefix, const std::string& my_key, std::int64_t my_revision,
                                   std::int64_t revision, etcd::range_response& mine, etcd::range_response& newest) {
  auto& kvs = newest.kvs;
  const auto is_ahead = [&](const etcd::key_value& kv) { return ahead_of(prefix, my_key, my_revision, kv); };
  const auto ahead = std::find_if(kvs.begin(), kvs.end(), is_ahead);
  if (ahead == kvs.end() && newest.more) return std::nullopt;
  // Complete: the key ahead is the only one (we are second in line), or there is none.
  snapshot s{revision, {}, std::count_if(kvs.begin(), kvs.end(), is_ahead) <= 1 && !newest.more};
  if (ahead != kvs.end()) s.keys.push_back(entry_of(*ahead));
  if (!mine.kvs.empty() && mine.kvs.front().create_revision == my_revision) s.keys.push_back(entry_of(mine.kvs.front()));
  return s;
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
  txn.success.push_back(key_alone(my_key));
  // Made now, ours is the newest key: the newest ones show who is just ahead, without a second read.
  txn.success.push_back(line_end(prefix, etcd::sort_order::descend, 0));
  txn.failure.push_back(key_alone(my_key));
  auto r = co_await c.txn_batched(std::move(txn));
  if (!r) co_return r.error();
  auto* mine = range_at(*r, r->succeeded ? 1 : 0);
  auto* newest = r->succeeded ? range_at(*r, 2) : nullptr;
  if (!mine || (r->succeeded && !newest)) co_return make_error_code(errc::malformed_response);
  if (mine->kvs.empty()) co_return snapshot{r->header.revision, {}, true};  // gone (with the lease): contend again
  const std::int64_t my_revision = mine->kvs.front().create_revision;
  if (!r->succeeded) co_return co_await read_ahead(c, prefix, my_key, my_revision);  // made earlier: keys may be newer
  if (auto s = ahead_from(prefix, my_key, my_revision, r->header.revision, *mine, *newest)) co_return std::move(*s);
  co_return co_await read_ahead(c, prefix, my_key, my_revision);
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
  if (auto s = ahead_from(prefix, my_key, my_revision, r->header.revision, *mine, *newest)) co_return std::move(*s);
  // A page of a nested name's keys: read the whole queue instead (rare: nested names under a busy lock).
  auto whole = co_await read_queue(c, prefix);
  if (!whole) co_return whole.error();
  co_return ahead_in(my_key, std::move(*whole));
}

boost::asio::awaitable<result<snapshot>> read_keys(etcd::client& c, const std::vector<queue_entry>& view) {
  etcd::txn_request txn;  // one linearizable read of each key, at one revision
  for (const auto& e : view) txn.success.push_back(key_alone(e.key));
  auto r = co_await c.txn_batched(std::move(txn));
  if (!r) co_return r.error();
  snapshot s{r->header.revision, {}, true};
  for (std::size_t i = 0; i < view.size(); ++i) {
    auto* kv = range_at(*r, i);
    if (!kv) co_return make_error_code(errc::malformed_response);
    if (!kv->kvs.empty()) s.keys.push_back(entry_of(kv->kvs.front()));
  }
  co_return s;
}

}  // namespace clusterlock::recipe
