// The `clusterlock` command, driven as a user drives it: the real binary against a real etcd, next to etcdctl.
// Holding, waiting, losing the lock, and what the commands print. (Errors and usage: cli_errors_test.cpp.)
#include "support/cli_fixture.hpp"

namespace clusterlock::test {
namespace {

TEST_F(Cli, RunGivesTheCommandTheLockInItsEnvironmentAndExitsWithItsStatus) {
  const auto env_file = file("env");
  const auto r = cli_run({"run", endpoints(), "--identity=alice", name_, "--", sh, "-c",
                          "printf '%s\\n%s\\n%s\\n%s\\n' \"$CLUSTERLOCK_NAME\" \"$CLUSTERLOCK_KEY\" "
                          "\"$CLUSTERLOCK_FENCING_TOKEN\" \"$CLUSTERLOCK_IDENTITY\" > " +
                              env_file.string() + "; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  const auto env = lines_of(read_file(env_file));
  ASSERT_EQ(env.size(), 4u) << read_file(env_file);
  EXPECT_EQ(env[0], name_);
  EXPECT_THAT(env[1], StartsWith(name_ + "/"));
  EXPECT_GT(std::stoll(env[2]), 0);
  EXPECT_EQ(env[3], "alice");
  EXPECT_EQ(queue_length(), 0u) << "the lock is freed when the command ends";

  // --timeout 0 on a free lock: one try that gets it, and COMMAND runs.
  const auto tried = cli_run({"run", endpoints(), "--timeout=0", name_, "--", sh, "-c", "exit 3"});
  EXPECT_EQ(tried.exit_code, 3) << tried.err;
  EXPECT_EQ(queue_length(), 0u);

  // Killed by a signal: 128 + the signal, as a shell reports it.
  const auto killed = cli_run({"run", endpoints(), name_, "--", sh, "-c", "kill -TERM $$"});
  EXPECT_EQ(killed.exit_code, 128 + SIGTERM) << killed.err;

  // A command that does not exist fails at once, before any wait for the lock.
  const auto missing = cli_run({"run", endpoints(), name_, "--", "no-such-command-here"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("no-such-command-here: command not found"));
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, RunsOnOneLockNeverOverlap) {
  const auto log = file("intervals").string();
  const std::string body = "echo start $(date +%s%N) $$ >> " + log + "; sleep 0.3; echo end $(date +%s%N) $$ >> " + log;
  std::vector<std::unique_ptr<background_process>> runs;
  for (int i = 0; i < 3; ++i)
    runs.push_back(cli_start({"run", endpoints(), "--ttl=2", name_, "--", sh, "-c", body}, "run" + std::to_string(i)));
  for (auto& run : runs) {
    EXPECT_EQ(run->wait_for_exit(20s), 0) << run->report();
  }
  // Each command wrote "start T PID" then "end T PID"; in file order, a start must follow the previous end.
  const auto lines = lines_of(read_file(log));
  ASSERT_EQ(lines.size(), 6u) << read_file(log);
  long long previous_end = 0;
  for (std::size_t i = 0; i < lines.size(); i += 2) {
    std::istringstream start(lines[i]), end(lines[i + 1]);
    std::string start_word, end_word, start_pid, end_pid;
    long long start_ns = 0, end_ns = 0;
    start >> start_word >> start_ns >> start_pid;
    end >> end_word >> end_ns >> end_pid;
    EXPECT_EQ(start_word, "start") << read_file(log);
    EXPECT_EQ(end_word, "end") << read_file(log);
    EXPECT_EQ(start_pid, end_pid) << "two commands overlapped:\n" << read_file(log);
    EXPECT_GE(start_ns, previous_end) << read_file(log);
    previous_end = end_ns;
  }
}

TEST_F(Cli, RunWaitsWhileEtcdctlLockHoldsTheLock) {
  auto holder = etcdctl_start({"lock", name_}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return holder->out().find(name_ + "/") != std::string::npos; }, 10s))
      << holder->report();

  auto ours = cli_start({"run", endpoints(), name_, "--", sh, "-c", "touch " + file("ran").string()}, "run");
  ASSERT_TRUE(queue_reaches(2)) << ours->report();  // queued behind etcdctl's key
  // etcdctl's key has an empty value: every command says so in the same words.
  EXPECT_THAT(cli_run({"status", endpoints(), name_}).out, HasSubstr("held by (no identity)"));
  EXPECT_TRUE(ours->running()) << ours->report();
  EXPECT_FALSE(fs::exists(file("ran"))) << "the command ran while etcdctl held the lock";

  holder->signal(SIGTERM);  // etcdctl lock unlocks on SIGTERM
  EXPECT_EQ(holder->wait_for_exit(10s), 0) << holder->report();
  const auto start = steady::now();
  EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();
  EXPECT_LT(milliseconds_since(start), 5000) << "should take the lock on etcdctl's release, not on its lease's expiry";
  EXPECT_TRUE(fs::exists(file("ran")));
}

// Issue 17: a holder of NAME/sub blocked NAME (every key under NAME/ counted). Keys of nested names are now another
// lock's: NAME and NAME/sub are independent, for our holders and etcdctl's, while etcdctl lock NAME still excludes us
// (RunWaitsWhileEtcdctlLockHoldsTheLock).
TEST_F(Cli, NestedNamesAreIndependentLocks) {
  auto ours = cli_start({"run", endpoints(), name_ + "/ours", "--", sh, "-c",
                         "echo held > " + file("nested").string() + "; sleep 30"},
                        "nested");
  ASSERT_TRUE(file_has("nested", "held")) << ours->report();
  auto theirs = etcdctl_start({"lock", name_ + "/theirs"}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return theirs->out().find(name_ + "/theirs/") != std::string::npos; }, 10s))
      << theirs->report();

  const auto status = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("free")) << "the holders of NAME/ours and NAME/theirs are not NAME's";

  const auto run = cli_run({"run", endpoints(), "--timeout=5s", name_, "--", sh, "-c", "exit 7"});
  EXPECT_EQ(run.exit_code, 7) << run.err;

  ours->signal(SIGTERM);
  theirs->signal(SIGTERM);
  EXPECT_NE(ours->wait_for_exit(10s), -1) << ours->report();
  EXPECT_EQ(theirs->wait_for_exit(10s), 0) << theirs->report();
}

// Issue 17: a key put under NAME/ without a lease blocks the lock until someone deletes it; that wait was silent.
TEST_F(Cli, AKeyWithoutALeaseIsNamedWithHowToClearIt) {
  const std::string key = name_ + "/by-hand";
  cluster().etcdctl({"put", key, "v"});
  const auto status = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("key " + key + " has no lease: it stays until deleted"));
  EXPECT_THAT(status.out, HasSubstr("etcdctl del " + key));

  const auto run = cli_run({"run", endpoints(), "--timeout=1s", name_, "--", "true"});
  EXPECT_EQ(run.exit_code, 124) << run.err;
  EXPECT_THAT(run.err, HasSubstr("key " + key + " has no lease")) << "said while waiting, without -v";
  auto times = [&](const std::string& text) {
    std::size_t n = 0;
    for (auto at = text.find("has no lease"); at != std::string::npos; at = text.find("has no lease", at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(times(run.err), 1u) << "said once, not again when giving up:\n" << run.err;
  const auto watch = cli_run({"watch", "--count=1", endpoints(), name_});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.err, HasSubstr("key " + key + " has no lease"));
  cluster().etcdctl({"del", key});
}

TEST_F(Cli, EtcdctlLockWaitsWhileRunHoldsTheLock) {
  const auto ours_log = file("ours").string();
  auto ours = cli_start({"run", endpoints(), name_, "--", sh, "-c",
                         "echo start >> " + ours_log + "; sleep 1; echo end $(date +%s%N) >> " + ours_log},
                        "run");
  ASSERT_TRUE(file_has("ours", "start")) << ours->report();

  const auto theirs = file("theirs").string();
  const auto r = cluster().try_etcdctl({"lock", name_, "--", sh, "-c", "date +%s%N > " + theirs});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();

  const auto ours_lines = lines_of(read_file(ours_log));
  ASSERT_EQ(ours_lines.size(), 2u) << read_file(ours_log);
  const long long ours_end = std::stoll(ours_lines[1].substr(4));
  const long long theirs_start = std::stoll(read_file(theirs));
  EXPECT_GE(theirs_start, ours_end) << "etcdctl's command ran while ours held the lock";
}

TEST_F(Cli, LosingTheLockTerminatesTheCommand) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=5s", name_, "--", sh, "-c",
                        "trap 'echo TERM >> " + file("child").string() + "; exit 3' TERM; echo started >> " +
                            file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  cluster().etcdctl({"del", "--prefix", name_ + "/"});  // an operator takes the lock away
  const auto code = run->wait_for_exit(10s);
  EXPECT_EQ(code, 122) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("lost the lock"));
  EXPECT_THAT(run->err(), HasSubstr("REMOVED"));
  EXPECT_THAT(read_file(file("child")), HasSubstr("TERM")) << "the command got SIGTERM";
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, ACommandThatIgnoresSigtermIsKilledAfterTheGracePeriod) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=500ms", name_, "--", sh, "-c",
                        "trap '' TERM; echo started >> " + file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  const auto start = steady::now();
  cluster().etcdctl({"del", "--prefix", name_ + "/"});
  EXPECT_EQ(run->wait_for_exit(10s), 122) << run->report();
  EXPECT_GE(milliseconds_since(start), 450);
  EXPECT_THAT(run->err(), HasSubstr("SIGKILL"));
}

// Issue 17: --grace 0 said "SIGKILL in 0s", then "still runs 0s after SIGTERM: sending SIGKILL".
TEST_F(Cli, NoGracePeriodMeansSigkillAtOnceAndSaysSo) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=0", name_, "--", sh, "-c",
                        "trap '' TERM; echo started >> " + file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();
  cluster().etcdctl({"del", "--prefix", name_ + "/"});
  EXPECT_EQ(run->wait_for_exit(10s), 122) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("sending SIGKILL to " + std::string(sh) + " (--grace 0)")) << run->report();
  EXPECT_THAT(run->err(), Not(HasSubstr("SIGTERM")));
}

TEST_F(Cli, SigtermToRunReachesTheCommandAndFreesTheLockAtOnce) {
  // TTL 10 s: the waiter getting the lock within a second proves a release, not a lease expiry.
  auto first = cli_start({"run", endpoints(), "--ttl=10", name_, "--", sh, "-c",
                          "trap 'echo TERM >> " + file("first").string() + "; exit 143' TERM; echo started >> " +
                              file("first").string() + "; while :; do sleep 0.1; done"},
                         "first");
  ASSERT_TRUE(file_has("first", "started")) << first->report();
  auto second = cli_start({"run", endpoints(), "--ttl=10", name_, "--", sh, "-c", "echo ran >> " + file("second").string()},
                          "second");
  ASSERT_TRUE(queue_reaches(2)) << second->report();

  first->signal(SIGTERM);
  EXPECT_EQ(first->wait_for_exit(10s), 143) << first->report();
  EXPECT_THAT(read_file(file("first")), HasSubstr("TERM"));
  const auto start = steady::now();
  EXPECT_EQ(second->wait_for_exit(10s), 0) << second->report();
  EXPECT_LT(milliseconds_since(start), 3000);
  EXPECT_THAT(read_file(file("second")), HasSubstr("ran"));
}

// run --watch predecessor (options::watch): a waiter watches only the key ahead of its own, so -v shows no holder
// lines, and still takes its turn from the release. Behind it a waiter of the whole line (the default) in the same
// line: both kinds take turns in one lock.
TEST_F(Cli, RunWithThePredecessorWatchTakesItsTurnFromTheReleaseAndShowsNoHolderLines) {
  // TTL 10 s: a turn within 3 s is the release's, not a lease's expiry.
  auto first = cli_start({"run", endpoints(), "--ttl=10", "--identity=first", name_, "--", sh, "-c",
                          "trap 'exit 143' TERM; echo started >> " + file("first").string() +
                              "; while :; do sleep 0.1; done"},
                         "first");
  ASSERT_TRUE(file_has("first", "started")) << first->report();
  auto pred = cli_start({"run", endpoints(), "-v", "--ttl=10", "--identity=pred", "--watch=predecessor", name_, "--",
                         sh, "-c", "echo ran >> " + file("pred").string() + "; sleep 0.5"},
                        "pred");
  ASSERT_TRUE(queue_reaches(2)) << pred->report();
  auto line = cli_start({"run", endpoints(), "-v", "--ttl=10", "--identity=line", "--watch=line", name_, "--", sh,
                         "-c", "echo ran >> " + file("line").string()},
                        "line");
  ASSERT_TRUE(queue_reaches(3)) << line->report();

  first->signal(SIGTERM);
  EXPECT_EQ(first->wait_for_exit(10s), 143) << first->report();
  const auto start = steady::now();
  EXPECT_EQ(pred->wait_for_exit(10s), 0) << pred->report();
  EXPECT_LT(milliseconds_since(start), 3000) << pred->report();
  EXPECT_EQ(line->wait_for_exit(10s), 0) << line->report();
  EXPECT_LT(milliseconds_since(start), 6000) << line->report();
  EXPECT_THAT(read_file(file("pred")), HasSubstr("ran"));
  EXPECT_THAT(read_file(file("line")), HasSubstr("ran"));
  EXPECT_THAT(pred->err(), HasSubstr("ACQUIRED"));
  EXPECT_THAT(pred->err(), Not(HasSubstr("holder: "))) << "a predecessor watch sends no holder_changed";
  EXPECT_THAT(line->err(), HasSubstr("holder: pred")) << "the whole line's watch saw the hand-off to pred";
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, GivingUpTheWaitLeavesTheQueue) {
  auto holder = etcdctl_start({"lock", name_}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return holder->out().find(name_ + "/") != std::string::npos; }, 10s))
      << holder->report();

  // --timeout: exit code 124 and a message that says who holds the lock.
  const auto start = steady::now();
  const auto timed_out = cli_run({"run", endpoints(), "--timeout=1s", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(timed_out.exit_code, 124) << timed_out.err;
  EXPECT_GE(milliseconds_since(start), 1000);
  EXPECT_THAT(timed_out.err, HasSubstr("gave up waiting"));
  EXPECT_EQ(queue_length(), 1u) << "the timed-out waiter left its key behind";

  // --timeout 0 tries once (issue 17: it was refused): 124 at once with who holds it, and no key left behind.
  const auto tried = cli_run({"run", endpoints(), "--timeout=0", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(tried.exit_code, 124) << tried.err;
  EXPECT_THAT(tried.err, HasSubstr("is taken (held by (no identity), fencing token "));
  EXPECT_THAT(tried.err, HasSubstr("; not waiting (--timeout 0)"));
  EXPECT_EQ(queue_length(), 1u) << "the try left its key behind";

  // A signal while waiting: leave the queue and exit 128 + signal.
  auto waiter = cli_start({"run", endpoints(), name_, "--", sh, "-c", "exit 0"}, "waiter");
  ASSERT_TRUE(queue_reaches(2)) << waiter->report();
  waiter->signal(SIGINT);
  EXPECT_EQ(waiter->wait_for_exit(10s), 128 + SIGINT) << waiter->report();
  EXPECT_EQ(queue_length(), 1u) << "the interrupted waiter left its key behind";
  holder->signal(SIGTERM);
  EXPECT_EQ(holder->wait_for_exit(10s), 0) << holder->report();
}

}  // namespace
}  // namespace clusterlock::test

namespace clusterlock::test {
namespace {

// status --json and watch --json carry lock_manager::stats() (stats.hpp) as "stats", by the same field names.
TEST_F(Cli, StatusJsonCarriesTheObserversStats) {
  auto alice = cli_start({"run", endpoints(), "--identity=alice", name_, "--", "sleep", "30"}, "alice");
  ASSERT_TRUE(queue_reaches(1)) << alice->report();
  const auto as_json = cli_run({"status", "--json", endpoints(), name_});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const json::value doc = json::parse(as_json.out);
  const auto& stats = doc.at("stats").as_object();
  EXPECT_FALSE(stats.at("have_lock").as_bool()) << "status observes";
  EXPECT_EQ(stats.at("acquisitions").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(stats.at("queue_position").is_null()) << "an observer has no key in line";
  EXPECT_EQ(stats.at("queue_length").to_number<std::int64_t>(), 1);
  const auto& session = stats.at("session").as_object();
  EXPECT_EQ(session.at("watch_prefix").as_string(), name_ + "/");
  EXPECT_GE(session.at("requests").to_number<std::int64_t>(), 1);  // the queue's read
  EXPECT_EQ(session.at("request_failures").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(session.at("request_failures_by_error").as_object().empty());
  EXPECT_EQ(session.at("watch_restarts").to_number<std::int64_t>(), 0);
  alice->signal(SIGTERM);
  EXPECT_EQ(alice->wait_for_exit(10s), 128 + SIGTERM) << alice->report();
}

TEST_F(Cli, WatchJsonWithContendCarriesTheHoldersStats) {
  auto watcher = cli_start({"watch", "--contend", "--json", "--count=1", "--ttl=3", endpoints(), name_}, "watch");
  ASSERT_TRUE(watcher->wait_for_exit(20s).has_value()) << watcher->report();
  const auto lines = lines_of(watcher->out());
  ASSERT_EQ(lines.size(), 1u) << watcher->report();
  const auto line = json::parse(lines[0]).as_object();
  EXPECT_EQ(line.at("event").as_string(), "acquired");
  const auto& stats = line.at("stats").as_object();
  EXPECT_TRUE(stats.at("have_lock").as_bool());
  EXPECT_EQ(stats.at("fencing_token"), line.at("fencing_token"));
  EXPECT_EQ(stats.at("acquisitions").to_number<std::int64_t>(), 1);
  EXPECT_EQ(stats.at("queue_position").to_number<std::int64_t>(), 0);
  EXPECT_GE(stats.at("time_held_seconds").to_number<double>(), 0.0);
  const auto& session = stats.at("session").as_object();
  EXPECT_FALSE(session.at("lease").is_null());
  EXPECT_EQ(session.at("granted_ttl_seconds").to_number<std::int64_t>(), 3);
  EXPECT_EQ(session.at("leases_granted").to_number<std::int64_t>(), 1);
  EXPECT_LT(session.at("since_renewal_seconds").to_number<double>(), 3.0);
  EXPECT_GT(session.at("lease_valid_for_seconds").to_number<double>(), 0.0);
  const auto& keepalives = session.at("keepalive_latency").as_object();
  EXPECT_TRUE(keepalives.contains("count"));
  EXPECT_EQ(keepalives.at("buckets").as_object().size(), latency_histogram::upper_bounds.size());
}

}  // namespace
}  // namespace clusterlock::test
