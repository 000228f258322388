// `clusterlock run --slots N`: at most N commands at once across processes, the rest admitted as permits free;
// contenders that disagree on N are refused with the key that disagrees.
#include "support/cli_fixture.hpp"

#include <fstream>
#include <map>

namespace clusterlock::test {
namespace {

// Five runs of NAME with two slots. Each command marks itself in (a file of its own), waits for `go`, logs its start
// and end: exactly two are in before `go`, and the log never shows three at once.
TEST_F(Cli, RunSlotsLetsAtMostNCommandsRunAtOnce) {
  const auto dir = file("in");
  fs::create_directories(dir);
  const auto go = file("go").string(), log = file("log").string();
  const std::string body = "touch " + dir.string() + "/$$; while [ ! -e " + go + " ]; do sleep 0.02; done; " +
                           "echo start $(date +%s%N) >> " + log + "; sleep 0.2; echo end $(date +%s%N) >> " + log;
  std::vector<std::unique_ptr<background_process>> runs;
  for (int i = 0; i < 5; ++i)
    runs.push_back(
        cli_start({"run", endpoints(), "--ttl=5", "--slots=2", name_, "--", sh, "-c", body}, "run" + std::to_string(i)));
  auto in_now = [&] { return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator())); };
  ASSERT_TRUE(queue_reaches(5)) << runs[4]->report();
  ASSERT_TRUE(eventually([&] { return in_now() == 2; }, 10s)) << runs[0]->report();
  EXPECT_FALSE(eventually([&] { return in_now() > 2; }, 500ms)) << "a third command ran";
  { std::ofstream(go) << "go\n"; }
  for (auto& run : runs) EXPECT_EQ(run->wait_for_exit(30s), 0) << run->report();
  EXPECT_EQ(in_now(), 5u);
  // Sweep the starts and ends in time order: never more than two running.
  std::multimap<long long, int> edges;
  for (const auto& line : lines_of(read_file(log))) {
    std::istringstream in(line);
    std::string what;
    long long ns = 0;
    in >> what >> ns;
    edges.emplace(ns, what == "start" ? 1 : -1);
  }
  ASSERT_EQ(edges.size(), 10u) << read_file(log);
  int running = 0, most = 0;
  for (const auto& [ns, step] : edges) most = std::max(most, running += step);
  EXPECT_LE(most, 2) << read_file(log);
  EXPECT_EQ(queue_length(), 0u);
}

// --timeout 0 with every permit taken: 124 at once naming the holders; another N: exit 1 naming the key.
TEST_F(Cli, RunSlotsRefusesAnotherNAndTriesOnceWithTimeoutZero) {
  const auto go = file("go").string();
  const std::string wait_for_go = "while [ ! -e " + go + " ]; do sleep 0.02; done";
  auto a = cli_start({"run", endpoints(), "--identity=a", "--slots=2", name_, "--", sh, "-c", wait_for_go}, "a");
  ASSERT_TRUE(queue_reaches(1)) << a->report();
  auto b = cli_start({"run", endpoints(), "--identity=b", "--slots=2", name_, "--", sh, "-c", wait_for_go}, "b");
  ASSERT_TRUE(queue_reaches(2)) << b->report();

  // status shows the permit holders (and identities without `slots=2;`).
  const auto table = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("semaphore \"" + name_ + "\" (2 slots): 2 of 2 permits held, 0 waiting"));
  EXPECT_THAT(table.out, HasSubstr("permit    a "));
  EXPECT_THAT(table.out, HasSubstr("permit    b "));
  const auto as_json = json::parse(cli_run({"status", "--json", endpoints(), name_}).out).as_object();
  EXPECT_EQ(as_json.at("slots").to_number<int>(), 2);
  ASSERT_EQ(as_json.at("holders").as_array().size(), 2u);
  EXPECT_EQ(as_json.at("holders").as_array()[0].at("identity").as_string(), "a");
  EXPECT_TRUE(as_json.at("waiters").as_array().empty());

  const auto tried = cli_run({"run", endpoints(), "--timeout=0", "--slots=2", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(tried.exit_code, 124) << tried.err;
  EXPECT_THAT(tried.err, HasSubstr("every permit of \"" + name_ + "\" is taken (held by a, fencing token "));
  EXPECT_THAT(tried.err, HasSubstr(", b, fencing token "));
  EXPECT_EQ(queue_length(), 2u) << "the try left its key behind";

  const auto other = cli_run({"run", endpoints(), "--slots=3", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(other.exit_code, 1) << other.err;
  EXPECT_THAT(other.err, HasSubstr("was made with 2 slots, ours with 3"));
  EXPECT_EQ(queue_length(), 2u) << "the refused contender left its key behind";

  { std::ofstream(go) << "go\n"; }
  EXPECT_EQ(a->wait_for_exit(10s), 0) << a->report();
  EXPECT_EQ(b->wait_for_exit(10s), 0) << b->report();
}

}  // namespace
}  // namespace clusterlock::test
