// `clusterlock elect` next to `etcdctl elect` (the same keys: each sees and waits for the other), and the fenced
// writes `put --fenced` / `del --fenced` from inside run's COMMAND. The real binaries against a real etcd.
#include "support/cli_fixture.hpp"

namespace clusterlock::test {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ElectCli = Cli;

// What a process printed, once it has printed at least `n` lines (empty if it has not within the bound).
std::vector<std::string> first_lines(background_process& p, std::size_t n, std::chrono::milliseconds timeout = 10s) {
  if (!eventually([&] { return lines_of(p.out()).size() >= n; }, timeout)) return {};
  return lines_of(p.out());
}

TEST_F(ElectCli, EtcdctlListenerSeesOurLeaderAndProposal) {
  auto ours = cli_start({"elect", endpoints(), name_, "proposal-p"}, "ours");
  const auto won = first_lines(*ours, 2);
  ASSERT_EQ(won.size(), 2u) << ours->report();  // as etcdctl elect prints it: our key, then our proposal
  EXPECT_THAT(won[0], StartsWith(name_ + "/"));
  EXPECT_EQ(won[1], "proposal-p");

  auto listener = etcdctl_start({"elect", "-l", name_}, "listener");
  EXPECT_THAT(first_lines(*listener, 2), ElementsAre(won[0], "proposal-p")) << listener->report();

  ours->signal(SIGINT);  // resigns: the key is deleted at once, and the exit is 0
  EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();
  EXPECT_EQ(queue_length(), 0u);
  listener->signal(SIGINT);
  EXPECT_TRUE(listener->wait_for_exit(10s).has_value()) << listener->report();
}

TEST_F(ElectCli, OurListenerSeesEtcdctlsLeaderAndProposal) {
  auto theirs = etcdctl_start({"elect", name_, "proposal-q"}, "etcdctl");
  const auto won = first_lines(*theirs, 2);
  ASSERT_EQ(won.size(), 2u) << theirs->report();
  const std::string key = won[0];

  auto plain = cli_start({"elect", "--listen", endpoints(), name_}, "plain");
  auto as_json = cli_start({"elect", "-l", "--json", endpoints(), name_}, "json");
  EXPECT_THAT(first_lines(*plain, 1), ElementsAre(key + " proposal-q")) << plain->report();
  ASSERT_EQ(first_lines(*as_json, 1).size(), 1u) << as_json->report();

  theirs->signal(SIGINT);  // etcdctl elect resigns
  EXPECT_TRUE(theirs->wait_for_exit(10s).has_value()) << theirs->report();
  EXPECT_THAT(first_lines(*plain, 2), ElementsAre(key + " proposal-q", "(no leader)")) << plain->report();
  const auto objects = first_lines(*as_json, 2);
  ASSERT_EQ(objects.size(), 2u) << as_json->report();
  const auto leader = json::parse(objects[0]).as_object();
  EXPECT_EQ(leader.at("key").as_string(), key);
  EXPECT_EQ(leader.at("value").as_string(), "proposal-q");
  EXPECT_EQ(key, name_ + "/" + std::string(leader.at("lease").as_string()));
  EXPECT_GT(leader.at("fencing_token").as_int64(), 0);
  EXPECT_GE(leader.at("revision").as_int64(), leader.at("fencing_token").as_int64());
  const auto nobody = json::parse(objects[1]).as_object();
  EXPECT_TRUE(nobody.at("key").is_null());
  EXPECT_TRUE(nobody.at("value").is_null());
  EXPECT_EQ(nobody.at("fencing_token").as_int64(), 0);

  for (auto* p : {plain.get(), as_json.get()}) {
    p->signal(SIGTERM);
    EXPECT_EQ(p->wait_for_exit(10s), 0) << p->report();
  }
}

// With either watch scope (--watch predecessor: behind etcdctl's candidate it watches only etcdctl's key).
TEST_F(ElectCli, WaitsWhileEtcdctlLeadsAndLeadsWhenItResigns) {
  for (const std::string scope : {"line", "predecessor"}) {
    SCOPED_TRACE("--watch " + scope);
    auto theirs = etcdctl_start({"elect", name_, "proposal-q"}, "etcdctl");
    const auto their_lines = first_lines(*theirs, 2);
    ASSERT_EQ(their_lines.size(), 2u) << theirs->report();

    auto ours = cli_start({"elect", endpoints(), "--watch=" + scope, name_, "proposal-p"}, "ours");
    ASSERT_TRUE(queue_reaches(2)) << ours->report();  // our key is in line behind etcdctl's
    EXPECT_THAT(cli_run({"status", endpoints(), name_}).out, HasSubstr("held by proposal-q"));
    EXPECT_EQ(ours->out(), "") << "we printed a win while etcdctl led";

    theirs->signal(SIGINT);
    EXPECT_TRUE(theirs->wait_for_exit(10s).has_value()) << theirs->report();
    const auto start = steady::now();
    const auto won = first_lines(*ours, 2);
    ASSERT_EQ(won.size(), 2u) << ours->report();
    EXPECT_LT(milliseconds_since(start), 5000) << "should lead on etcdctl's resignation, not on its lease's expiry";
    EXPECT_THAT(won[0], StartsWith(name_ + "/"));
    EXPECT_NE(won[0], their_lines[0]);
    EXPECT_EQ(won[1], "proposal-p");
    ours->signal(SIGTERM);
    EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();
  }
}

TEST_F(ElectCli, LosingLeadershipExitsAsRunDoes) {
  // Without COMMAND: our key deleted by hand is REMOVED, 122.
  auto ours = cli_start({"elect", endpoints(), name_, "proposal-p"}, "ours");
  const auto won = first_lines(*ours, 2);
  ASSERT_EQ(won.size(), 2u) << ours->report();
  cluster().etcdctl({"del", won[0]});
  EXPECT_EQ(ours->wait_for_exit(10s), 122) << ours->report();
  EXPECT_THAT(ours->err(), HasSubstr("lost the leadership of \"" + name_ + "\" (REMOVED"));

  // With COMMAND: run's environment (CLUSTERLOCK_IDENTITY is the proposal) and COMMAND's exit status; our key and
  // proposal are printed before COMMAND starts.
  const auto env_file = file("env");
  const auto r = cli_run({"elect", endpoints(), name_, "proposal-c", "--", sh, "-c",
                          "echo \"$CLUSTERLOCK_IDENTITY $CLUSTERLOCK_KEY $CLUSTERLOCK_ENDPOINTS\" > " +
                              env_file.string() + "; echo from-command; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  const auto printed = lines_of(r.out);
  ASSERT_EQ(printed.size(), 3u) << r.out;
  EXPECT_EQ(printed[1], "proposal-c");
  EXPECT_EQ(printed[2], "from-command");
  EXPECT_EQ(read_file(env_file), "proposal-c " + printed[0] + " " + cluster().endpoints_csv() + "\n");
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(ElectCli, FencedPutInsideRunWrites) {
  const std::string data = name_ + "-data";
  // No --endpoints for put: run exports CLUSTERLOCK_ENDPOINTS to COMMAND.
  const auto r =
      cli_run({"run", endpoints(), name_, "--", sh, "-c", std::string(cli) + " put --fenced " + data + " v1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Read after run has revoked its lease: the value has none, it stays.
  EXPECT_EQ(cluster().etcdctl({"get", "--print-value-only", data}), "v1\n");
}

TEST_F(ElectCli, FencedPutAfterTheLockKeyWasDeletedWritesNothing) {
  const std::string data = name_ + "-data";
  // COMMAND deletes the lock's key, then writes, in a subshell deaf to the SIGTERM that the loss brings; the shell
  // itself notes that SIGTERM (now, or while it sleeps) and ends on it.
  const std::string del_lock_key = "ETCDCTL_API=3 " + std::string(etcdctl_path) + " --endpoints=" +
                                   cluster().endpoints_csv() + " del \"$CLUSTERLOCK_KEY\" > /dev/null";
  const std::string script = "trap 'got=1' TERM; (trap '' TERM; " + del_lock_key + "; exec " + cli + " put --fenced " +
                             data + " v1) 2> " + file("put.err").string() + "; echo $? > " +
                             file("put.status").string() + "; while [ -z \"$got\" ]; do sleep 0.1; done";
  const auto r = cli_run({"run", endpoints(), "--grace=20s", name_, "--", sh, "-c", script}, {}, 30s);
  EXPECT_EQ(r.exit_code, 122) << r.err;
  EXPECT_EQ(read_file(file("put.status")), "122\n");
  const auto err = read_file(file("put.err"));
  EXPECT_THAT(err, HasSubstr("the lock is no longer ours (its key " + name_ + "/")) << err;
  // Gone, or back under the same name with a new create revision: run contends again after a loss, with its lease.
  EXPECT_THAT(err, ContainsRegex(" (is gone|now has create revision [0-9]+), fencing token [0-9]+\\): ")) << err;
  EXPECT_THAT(err, HasSubstr(data + " not written")) << err;
  EXPECT_EQ(cluster().etcdctl({"get", data}), "");
}

TEST_F(ElectCli, FencedDelInsideRunDeletes) {
  const std::string data = name_ + "-data";
  cluster().etcdctl({"put", data, "v0"});
  const auto r = cli_run({"run", endpoints(), name_, "--", sh, "-c", std::string(cli) + " del --fenced " + data});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(cluster().etcdctl({"get", data}), "");
}

TEST_F(ElectCli, FencedWritesRefuseBadUsage) {
  const auto unfenced = cli_run({"put", endpoints(), name_ + "-data", "v"});
  EXPECT_EQ(unfenced.exit_code, 2);
  EXPECT_THAT(unfenced.err, HasSubstr("use etcdctl put KEY VALUE"));
  EXPECT_EQ(cli_run({"del", endpoints(), name_ + "-data"}).exit_code, 2);

  const auto outside = cli_run({"put", "--fenced", endpoints(), name_ + "-data", "v"});
  EXPECT_EQ(outside.exit_code, 2);
  EXPECT_THAT(outside.err, HasSubstr("put --fenced runs inside clusterlock run or elect: CLUSTERLOCK_KEY is not set"));
  const auto bad_token = cli_run({"del", "--fenced", endpoints(), name_ + "-data"},
                                 {"CLUSTERLOCK_KEY=" + name_ + "/1", "CLUSTERLOCK_FENCING_TOKEN=abc"});
  EXPECT_EQ(bad_token.exit_code, 2);
  EXPECT_THAT(bad_token.err, HasSubstr("CLUSTERLOCK_FENCING_TOKEN='abc' is not a fencing token"));
  // A key under the lock's prefix would stand in its line (no lease): refused before anything is sent.
  const auto in_line = cli_run({"put", "--fenced", endpoints(), name_ + "/x", "v"},
                               {"CLUSTERLOCK_KEY=" + name_ + "/1", "CLUSTERLOCK_FENCING_TOKEN=5"});
  EXPECT_EQ(in_line.exit_code, 2);
  EXPECT_THAT(in_line.err, HasSubstr("is under the lock's own prefix " + name_ + "/"));
  EXPECT_EQ(cluster().etcdctl({"get", "--prefix", name_}), "") << "nothing was written";
}

}  // namespace
}  // namespace clusterlock::test
