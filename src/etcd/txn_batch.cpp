// Batched txns (client::txn_batched): txns asked while earlier ones are on their way go to etcd together, as the
// nested txns of one txn. Through the gateway every request costs etcd about 1 ms of CPU whatever it holds (5,000
// enqueue txns sent one by one took 5.7 s of etcd CPU, in batches of 32 0.8 s), so a burst of acquisitions or
// releases on one session is bounded by that cost, not by the work. A txn asked alone is sent at once, alone: no
// added wait.

#include "etcd/client_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <optional>
#include <unordered_set>

namespace clusterlock::etcd {

namespace {

constexpr int max_batches_in_flight = 4;
// etcd refuses a txn with more than --max-txn-ops (default 128) ops in a branch; a nested txn is one op.
constexpr std::size_t max_batch = 64;

// The keys a txn puts or deletes (two txns of one batch must not write the same key: etcd refuses the batch); false
// when it deletes a range, which then goes alone.
bool written_keys(const txn_request& t, std::vector<std::string>& keys) {
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      if (const auto* put = std::get_if<put_request>(&op)) {
        keys.push_back(put->key);
      } else if (const auto* del = std::get_if<delete_range_request>(&op)) {
        if (!del->range_end.empty()) return false;
        keys.push_back(del->key);
      }
    }
  }
  return true;
}

}  // namespace

struct client::impl::batch_member {
  explicit batch_member(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
  std::string body;
  std::vector<std::string> writes;
  bool alone = false;  // a range delete, or in a batch that etcd refused as a whole: sent by itself
  asio::steady_timer done;
  std::optional<result<txn_response>> out;
  void finish(result<txn_response> r) {
    if (out) return;
    out = std::move(r);
    done.cancel();
  }
};

asio::awaitable<result<txn_response>> client::impl::txn_batched(txn_request req) {
  // The client may be destroyed while we wait for a batch (its io_context torn down with us in it): we still leave
  // the line below.
  const auto self = shared_from_this();
  auto m = std::make_shared<batch_member>(ex);
  m->alone = !written_keys(req, m->writes);
  m->body = codec::encode(req);
  batch_pending.push_back(m);
  // Left before the reply (cancelled, or ended by an exception at a co_await): not sent yet, it never is; sent, its
  // outcome is unknown, as a cancelled txn's.
  detail::scope_exit leave([&] { std::erase(batch_pending, m); });
  pump_batches();
  while (!m->out) {
    co_await m->done.async_wait(asio::as_tuple(asio::use_awaitable));
    if (m->out) break;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return error_code(asio::error::operation_aborted);
  }
  leave.dismiss();
  co_return std::move(*m->out);
}

// Sends what is pending, in order, in batches of txns that write distinct keys.
void client::impl::pump_batches() {
  while (batches_in_flight < max_batches_in_flight && !batch_pending.empty()) {
    std::vector<std::shared_ptr<batch_member>> batch;
    std::unordered_set<std::string_view> writes;
    while (!batch_pending.empty() && batch.size() < max_batch) {
      auto& m = batch_pending.front();
      if (!batch.empty() && (m->alone || batch.front()->alone)) break;
      if (std::any_of(m->writes.begin(), m->writes.end(), [&](const auto& k) { return writes.contains(k); })) break;
      writes.insert(m->writes.begin(), m->writes.end());
      batch.push_back(std::move(m));
      batch_pending.pop_front();
    }
    ++batches_in_flight;
    asio::co_spawn(ex, send_batch(shared_from_this(), std::move(batch)), asio::detached);
  }
}

// `self`: the client may be destroyed while a batch is on its way.
asio::awaitable<void> client::impl::send_batch(std::shared_ptr<impl> self,
                                               std::vector<std::shared_ptr<batch_member>> batch) {
  auto& c = *self;
  // On every way out the next batch may go. Ended otherwise than by a reply (an exception, or destroyed with its
  // io_context, when nothing may be started any more): no next batch; whoever waits learns it now.
  bool replied = false;
  detail::scope_exit done([&] {
    --c.batches_in_flight;
    if (replied) {
      c.pump_batches();
      return;
    }
    for (auto& m : batch) m->finish(error_code(asio::error::operation_aborted));
    c.fail_pending_batches();
  });
  if (batch.size() == 1) {
    batch.front()->finish(co_await c.call(http::verb::post, "/v3/kv/txn", batch.front()->body, idempotency::safe,
                                          codec::decode_txn));
    replied = true;
    co_return;
  }
  std::vector<std::string_view> bodies;  // the members' own: they outlive the encoding
  bodies.reserve(batch.size());
  for (const auto& m : batch) bodies.emplace_back(m->body);
  auto r = co_await c.call(http::verb::post, "/v3/kv/txn", codec::encode_txn_batch(bodies), idempotency::safe,
                           codec::decode_txn_batch);
  replied = true;
  if (r && r->size() != batch.size()) r = make_error_code(errc::malformed_response);
  if (r) {
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->finish(std::move((*r)[i]));
  } else if (r.error() != asio::error::operation_aborted && !client_detail::is_transport_failure(r.error())) {
    // etcd refused the batch as a whole (one txn's permission, size, a lease): each goes again alone, first in line,
    // so that the one at fault fails by itself.
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      (*it)->alone = true;
      c.batch_pending.push_front(std::move(*it));
    }
    batch.clear();
  } else {
    for (auto& m : batch) m->finish(r.error());
  }
}

void client::impl::fail_pending_batches() {
  auto pending = std::exchange(batch_pending, {});
  for (auto& m : pending) m->finish(error_code(asio::error::operation_aborted));
}

}  // namespace clusterlock::etcd
