// Writes fenced by etcd itself (lock_manager::async_guarded_txn, async_proclaim): the user's compares and operations,
// which etcd applies only if our key still exists with our create revision (the fencing token). A holder that lost
// the lock without knowing it (frozen past its TTL, cut off) cannot write: etcd decides, not our clock.

#include "manager/manager_state.hpp"

namespace clusterlock::detail {

namespace asio = boost::asio;

asio::awaitable<result<etcd::txn_response>> guarded_txn(std::shared_ptr<manager_state> s, etcd::txn_request txn) {
  // Only the success branch is ours to guard: a failure branch would run when the guard fails, i.e. when we do not
  // hold the lock.
  if (!txn.failure.empty()) co_return make_error_code(errc::invalid_options);
  // Pessimism first: when we cannot prove that we hold the lock, we do not ask etcd.
  if (!s->holds_now()) co_return make_error_code(errc::lock_lost);
  const std::int64_t token = s->token.load();
  const std::string key = s->current_key();
  txn.compares.push_back(etcd::compare::create_revision(key, etcd::compare_result::equal, token));
  etcd::range_request ours;  // the failure branch reads our key: tells "not ours" from "your compare failed"
  ours.key = key;
  txn.failure.emplace_back(std::move(ours));
  // Not retried once sent: the user's operations need not be idempotent.
  auto r = co_await s->client.txn(std::move(txn), etcd::idempotency::unsafe);
  if (!r || r->succeeded) co_return r;
  const auto* read = r->responses.empty() ? nullptr : std::get_if<etcd::range_response>(&r->responses.back());
  if (!read || read->kvs.size() != 1 || read->kvs.front().create_revision != token)
    co_return make_error_code(errc::lock_lost);
  r->responses.clear();  // the failure branch was our read alone: nothing of the user's ran
  co_return r;
}

// etcd's Election.Proclaim: our own key, put again with the new value and its lease, guarded like any write.
// Without the lock, guarded_txn refuses it before anything is sent.
asio::awaitable<result<void>> proclaim(std::shared_ptr<manager_state> s, std::string value) {
  etcd::put_request put;
  put.key = s->current_key();
  put.value = value;
  put.lease = s->machine.my_lease();  // a put without it would tie our key to no lease: it would outlive us
  etcd::txn_request txn;
  txn.success.emplace_back(std::move(put));
  auto r = co_await guarded_txn(s, std::move(txn));
  if (!r) co_return r.error();
  std::lock_guard lock(s->view_mutex);
  s->value = std::move(value);  // a key made after a loss carries it too
  co_return result<void>{};
}

}  // namespace clusterlock::detail
