// clusterlock put --fenced / del --fenced: one write that etcd applies only while the lock of the `run` or `elect`
// around us is still ours. The lock is what they export to COMMAND (CLUSTERLOCK_KEY, CLUSTERLOCK_FENCING_TOKEN),
// and the check is etcd's own, in the write's transaction: our key still has the token as its create revision. A
// holder that lost the lock without knowing it (frozen past its TTL, cut off) cannot write. No lock_manager:
// nothing here contends or holds; the library's client sends the one txn.

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"

#include <clusterlock/etcd/client.hpp>

#include <boost/asio/io_context.hpp>

#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>

namespace clusterlock::cli {
namespace {

using boost::system::error_code;

struct fence {
  std::string key;          // the lock's key: NAME/<lease hex>
  std::int64_t token = 0;   // its create revision when we got the lock
};

// From the environment that run and elect give COMMAND. A missing or broken one is a usage error (exit 2): the
// command was run where it does not belong.
fence fence_from_environment(subcommand which) {
  const std::string where = std::string(to_string(which)) + " --fenced runs inside clusterlock run or elect: ";
  const char* key = std::getenv("CLUSTERLOCK_KEY");
  if (!key || !*key) throw usage_error(where + "CLUSTERLOCK_KEY is not set", which);
  const char* token = std::getenv("CLUSTERLOCK_FENCING_TOKEN");
  if (!token || !*token) throw usage_error(where + "CLUSTERLOCK_FENCING_TOKEN is not set", which);
  const std::string_view text(token);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value <= 0)
    throw usage_error("CLUSTERLOCK_FENCING_TOKEN='" + std::string(text) + "' is not a fencing token (a positive whole "
                      "number, as clusterlock run and elect set it)", which);
  return {key, value};
}

etcd::txn_request fenced_txn(const parsed_arguments& args, const fence& f) {
  etcd::txn_request txn;
  txn.compares.push_back(etcd::compare::create_revision(f.key, etcd::compare_result::equal, f.token));
  if (args.what == parsed_arguments::action::put) {
    etcd::put_request put;  // no lease: the value is the user's data, not the lock's
    put.key = args.fenced.key;
    put.value = args.fenced.value;
    txn.success.emplace_back(std::move(put));
  } else {
    etcd::delete_range_request del;
    del.key = args.fenced.key;
    txn.success.emplace_back(std::move(del));
  }
  etcd::range_request now;  // when the compare fails: what became of the lock's key, for the message
  now.key = f.key;
  txn.failure.emplace_back(std::move(now));
  return txn;
}

// "its key NAME/694d... is gone", "its key NAME/694d... now has create revision 57".
std::string what_became_of(const fence& f, const etcd::txn_response& r) {
  if (r.responses.size() == 1)
    if (const auto* read = std::get_if<etcd::range_response>(&r.responses.front()); read && !read->kvs.empty())
      return "its key " + f.key + " now has create revision " + std::to_string(read->kvs.front().create_revision);
  return "its key " + f.key + " is gone";
}

etcd::client_config client_config_of(const options& o) {
  etcd::client_config c;
  c.endpoints = o.endpoints;
  c.request_timeout = o.request_timeout;
  c.tls = o.tls;
  c.auth = o.auth;
  c.retry = o.retry;
  return c;
}

}  // namespace

int fenced_command(const parsed_arguments& args) {
  const bool put = args.what == parsed_arguments::action::put;
  const subcommand which = put ? subcommand::put : subcommand::del;
  const fence f = fence_from_environment(which);
  // A put of the lock's own key would take its lease away (it would stay for ever), and any key without a lease
  // under NAME/ stands in the lock's line until deleted (etcdctl counts every key there); a delete there would free
  // the lock, or remove a waiter, behind their backs. None of it is data.
  const std::string prefix = f.key.substr(0, f.key.rfind('/') + 1);
  if (args.fenced.key.starts_with(prefix))
    throw usage_error("KEY " + args.fenced.key + " is under the lock's own prefix " + prefix + ": " +
                          to_string(which) + " --fenced writes data, outside the lock's keys", which);
  const logger log(args.common);
  const options opts = make_options(args.common, {}, false);
  etcd_trouble trouble;
  auto config = client_config_of(opts);
  config.diagnostics = [&](const diagnostic& d) {
    trouble.note(d);
    log.report(d, d.message);
  };
  boost::asio::io_context io;
  etcd::client client(io.get_executor(), std::move(config));
  error_code failed;
  etcd::txn_response answer;
  // Unsafe: once it may have reached etcd it is not sent again (a second put after a lost reply, or after the lock
  // changed hands, would not say what the first did). The client still retries what never left this process.
  client.async_txn(fenced_txn(args, f), etcd::idempotency::unsafe, [&](error_code ec, etcd::txn_response r) {
    failed = ec;
    answer = std::move(r);
  });
  io.run();

  const std::string done = put ? "written" : "deleted";
  if (failed) {
    // Refused: etcd did not apply it. Otherwise it may have reached etcd before the reply was lost.
    const std::string outcome =
        is_refusal(failed) ? args.fenced.key + " not " + done
                           : "not known whether " + args.fenced.key + " was " + done + " (fenced all the same)";
    log.error(trouble.describe(failed, opts) + "; " + outcome);
    return exit_code::etcd_failed;
  }
  if (!answer.succeeded) {
    log.error("the lock is no longer ours (" + what_became_of(f, answer) + ", fencing token " +
              std::to_string(f.token) + "): " + args.fenced.key + " not " + done);
    return exit_code::not_ours;
  }
  std::string what = args.fenced.key + " " + done;
  if (!put && answer.responses.size() == 1)
    if (const auto* del = std::get_if<etcd::delete_range_response>(&answer.responses.front()); del && del->deleted == 0)
      what = args.fenced.key + " did not exist: nothing deleted";
  log.info(what + " at revision " + std::to_string(answer.header.revision) + ", fenced by " + f.key +
           " (fencing token " + std::to_string(f.token) + ")");
  return exit_code::success;
}

}  // namespace clusterlock::cli
