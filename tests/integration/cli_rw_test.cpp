// `clusterlock run --read/--write NAME`: readers share NAME's read-write lock, a writer holds it alone, first come
// first served; `status` and `watch` show a read-write lock's and a semaphore's keys for what they are.
#include "support/cli_fixture.hpp"

#include <fstream>
#include <map>

namespace clusterlock::test {
namespace {

// A command's time holding the lock, from the lines it wrote: "start <ns> <who>", "end <ns> <who>".
struct rw_span {
  long long start = 0, end = 0;
};

std::map<std::string, rw_span> rw_spans_in(const std::string& log) {
  std::map<std::string, rw_span> out;
  for (const auto& line : lines_of(log)) {
    std::istringstream in(line);
    std::string what, who;
    long long ns = 0;
    in >> what >> ns >> who;
    (what == "start" ? out[who].start : out[who].end) = ns;
  }
  return out;
}

bool rw_overlap(const rw_span& a, const rw_span& b) { return a.start < b.end && b.start < a.end; }

// Readers a and b, then writer w, then reader c. a and b run at once: each waits (bounded) for the other's mark, so
// neither can finish alone. w waits for both, and c, behind w, for w (FIFO); the logged spans show it. Meanwhile
// status shows two holders reading and two waiting, a try-once says why it would wait, and watch names the oldest
// reader.
TEST_F(Cli, RunReadSharesRunWriteExcludesAndStatusShowsModes) {
  const auto in = file("in");
  fs::create_directories(in);
  const auto go = file("go").string(), log = file("log").string();
  // Bounded waits in the commands too: a command that waits in vain exits 3 (or 4), and the test says so.
  const auto wait_for = [](const std::string& path, int code) {
    return "i=0; while [ ! -e " + path + " ]; do i=$((i+1)); [ $i -gt 600 ] && exit " + std::to_string(code) +
           "; sleep 0.05; done; ";
  };
  const auto reader = [&](const std::string& me, const std::string& other) {
    return "touch " + (in / me).string() + "; " + wait_for((in / other).string(), 3) + "echo start $(date +%s%N) " +
           me + " >> " + log + "; " + wait_for(go, 4) + "echo end $(date +%s%N) " + me + " >> " + log;
  };
  const auto brief = [&](const std::string& me) {
    return "echo start $(date +%s%N) " + me + " >> " + log + "; sleep 0.2; echo end $(date +%s%N) " + me + " >> " + log;
  };
  auto a = cli_start({"run", endpoints(), "--read", "--identity=a", name_, "--", sh, "-c", reader("a", "b")}, "a");
  ASSERT_TRUE(queue_reaches(1)) << a->report();
  auto b = cli_start({"run", endpoints(), "--identity=b", name_, "--read", "--", sh, "-c", reader("b", "a")}, "b");
  ASSERT_TRUE(queue_reaches(2)) << b->report();
  auto w = cli_start({"run", endpoints(), "--write", "--identity=w", name_, "--", sh, "-c", brief("w")}, "w");
  ASSERT_TRUE(queue_reaches(3)) << w->report();
  auto c = cli_start({"run", endpoints(), "--read", "--identity=c", name_, "--", sh, "-c", brief("c")}, "c");
  ASSERT_TRUE(queue_reaches(4)) << c->report();
  ASSERT_TRUE(eventually([&] { return lines_of(read_file(log)).size() == 2; }, 20s))
      << a->report() << b->report() << read_file(log);

  const auto table = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("read-write lock \"" + name_ + "\" is held for reading by 2 readers, 2 waiting"));
  EXPECT_THAT(table.out, HasSubstr("POSITION  MODE   IDENTITY"));
  EXPECT_THAT(table.out, HasSubstr("holder    read   a "));
  EXPECT_THAT(table.out, HasSubstr("holder    read   b "));
  EXPECT_THAT(table.out, HasSubstr("1         write  w "));
  EXPECT_THAT(table.out, HasSubstr("2         read   c "));
  EXPECT_THAT(table.out, Not(HasSubstr("rw=")));
  const auto as_json = json::parse(cli_run({"status", "--json", endpoints(), name_}).out).as_object();
  EXPECT_EQ(as_json.at("type").as_string(), "rw_lock");
  const auto& holders = as_json.at("holders").as_array();
  const auto& waiters = as_json.at("waiters").as_array();
  ASSERT_EQ(holders.size(), 2u) << as_json;
  ASSERT_EQ(waiters.size(), 2u) << as_json;
  EXPECT_EQ(holders[0].at("identity").as_string(), "a");
  EXPECT_EQ(holders[1].at("mode").as_string(), "read");
  EXPECT_EQ(waiters[0].at("identity").as_string(), "w");
  EXPECT_EQ(waiters[0].at("mode").as_string(), "write");
  EXPECT_EQ(waiters[1].at("identity").as_string(), "c");
  EXPECT_GT(waiters[0].at("fencing_token").to_number<long long>(), holders[1].at("fencing_token").to_number<long long>());

  const auto write_once = cli_run({"run", endpoints(), "--write", "--timeout=0", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(write_once.exit_code, 124) << write_once.err;
  EXPECT_THAT(write_once.err, HasSubstr("the write lock of \"" + name_ + "\" is taken (held by a, fencing token "));
  const auto read_once = cli_run({"run", endpoints(), "--read", "--timeout=0", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(read_once.exit_code, 124) << read_once.err;
  EXPECT_THAT(read_once.err, HasSubstr("the read lock of \"" + name_ + "\" would wait for a writer (held by a, "));
  EXPECT_EQ(queue_length(), 4u) << "a try left its key behind";
  const auto watched = cli_run({"watch", "--count=1", endpoints(), name_});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("  oldest reader: a (fencing token "));

  { std::ofstream(go) << "go\n"; }
  for (auto* run : {&a, &b, &w, &c}) EXPECT_EQ((*run)->wait_for_exit(30s), 0) << (*run)->report();
  const auto spans = rw_spans_in(read_file(log));
  ASSERT_EQ(spans.size(), 4u) << read_file(log);
  EXPECT_TRUE(rw_overlap(spans.at("a"), spans.at("b"))) << read_file(log);
  for (const char* reader_name : {"a", "b", "c"})
    EXPECT_FALSE(rw_overlap(spans.at("w"), spans.at(reader_name))) << reader_name << "\n" << read_file(log);
  EXPECT_GT(spans.at("c").start, spans.at("w").end) << "c went before the older writer\n" << read_file(log);
  EXPECT_EQ(queue_length(), 0u);
}

// One kind of lock per run: --read or --write with --slots (or each other) is bad usage, before any contact.
TEST_F(Cli, RunReadOrWriteWithSlotsIsRefused) {
  const auto both = cli_run({"run", endpoints(), "--read", "--slots=2", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.err, HasSubstr("--read and --slots exclude each other: run holds the lock, a permit of a "
                                  "semaphore (--slots N), or a read-write lock for reading (--read) or writing "
                                  "(--write)"));
  const auto modes = cli_run({"run", endpoints(), name_, "--write", "--read", "--", sh, "-c", "exit 0"});
  EXPECT_EQ(modes.exit_code, 2);
  EXPECT_THAT(modes.err, HasSubstr("--read and --write exclude each other"));
  EXPECT_EQ(queue_length(), 0u);
}

// watch of a semaphore's name follows its oldest key as its oldest permit holder, the `slots=N;` prefix stripped.
TEST_F(Cli, WatchOfASemaphoreNamesItsOldestPermitHolder) {
  const auto go = file("go").string();
  const std::string wait_for_go = "i=0; while [ ! -e " + go + " ]; do i=$((i+1)); [ $i -gt 600 ] && exit 4; sleep 0.05; done";
  auto s = cli_start({"run", endpoints(), "--identity=s1", "--slots=2", name_, "--", sh, "-c", wait_for_go}, "s1");
  ASSERT_TRUE(queue_reaches(1)) << s->report();
  const auto text = cli_run({"watch", "--count=1", endpoints(), name_});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("  oldest permit holder: s1 (fencing token "));
  EXPECT_THAT(text.out, HasSubstr(", 2 slots)  key " + name_ + "/"));
  EXPECT_THAT(text.out, Not(HasSubstr("slots=")));
  const auto as_json = cli_run({"watch", "--json", "--count=1", endpoints(), name_});
  EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
  const auto event = json::parse(as_json.out).as_object();
  EXPECT_EQ(event.at("event").as_string(), "holder_changed");
  EXPECT_EQ(event.at("holder").as_string(), "s1");
  EXPECT_EQ(event.at("role").as_string(), "permit holder");
  EXPECT_EQ(event.at("slots").to_number<int>(), 2);
  { std::ofstream(go) << "go\n"; }
  EXPECT_EQ(s->wait_for_exit(10s), 0) << s->report();
}

}  // namespace
}  // namespace clusterlock::test
