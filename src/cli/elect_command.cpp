// clusterlock elect: etcd's election (`etcdctl elect`) from the command line. An election is our lock with the
// proposal as our key's value: the same keys (NAME/<lease hex>, the oldest leads) as etcd's election recipe, so
// etcdctl's candidates and observers and ours see one another. Campaigning is run's supervisor (supervise.hpp);
// --listen is watch's loop (follow_events.hpp) with lines of its own.

#include "cli/commands.hpp"
#include "cli/follow_events.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"
#include "cli/supervise.hpp"

#include <boost/json.hpp>

namespace clusterlock::cli {
namespace {

namespace json = boost::json;

// One line per change of leader. Plain: "KEY VALUE", as `etcdctl elect -l` shows the leader (there on two lines),
// and "(no leader)" where etcdctl prints nothing, so that a reader also learns that nobody leads. A change of the
// leader's value under the same key (a proclaim) is a holder_changed of its own: a line of its own.
std::string leader_line(const lock_event& e, bool as_json) {
  const bool nobody = e.fencing_token == 0;
  if (as_json) {
    json::object o;
    o["key"] = nobody ? json::value(nullptr) : json::value(e.key);
    o["value"] = nobody ? json::value(nullptr) : json::value(e.holder);
    o["lease"] = nobody ? json::value(nullptr) : json::value(lease_hex(e.lease));
    o["fencing_token"] = e.fencing_token;
    o["revision"] = e.revision;
    return json::serialize(o) + "\n";
  }
  if (nobody) return "(no leader)\n";
  return e.key + (e.holder.empty() ? "" : " " + e.holder) + "\n";
}

int listen(const parsed_arguments& args) {
  const options opts = make_options(args.common, args.name, false);
  return follow_events(args, opts, [as_json = args.elect.json](const lock_event& e, const lock_stats&) {
    // An observer gets only holder_changed; the others are a contender's.
    return e.kind == lock_event::holder_changed ? leader_line(e, as_json) : std::string();
  });
}

}  // namespace

int elect_command(const parsed_arguments& args) {
  if (args.elect.listen) return listen(args);
  hold_plan plan{true, std::nullopt};
  if (!args.run.command.empty()) {
    if (auto failed = find_command(args, plan)) return *failed;
  }
  auto opts = make_options(args.common, args.name, true);
  opts.identity = args.elect.proposal;  // our key's value: what etcdctl elect -l and the others show as the leader
  opts.watch = args.run.watch;
  return supervise(args, std::move(opts), std::move(plan));
}

}  // namespace clusterlock::cli
