// The clusterlock command's argument parser: subcommands, options, durations, and what counts as bad usage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/arguments.hpp"

#include <clusterlock/etcd/client_config.hpp>

namespace clusterlock::cli {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

parsed_arguments parse(const std::vector<std::string>& args, std::optional<std::string> env = std::nullopt) {
  return parse_arguments(args, env);
}

std::string usage_message(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const usage_error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(CliDuration, AcceptsUnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("5s"), 5000ms);
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("2m"), 120000ms);
  EXPECT_EQ(parse_duration("1h"), 3600000ms);
  EXPECT_EQ(parse_duration("10"), 10000ms);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("0.25"), 250ms);
  EXPECT_EQ(parse_duration("0"), 0ms);
}

TEST(CliDuration, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "s", "abc", "5x", "-1s", "1..5s", ".", "5 s", "5sec", "1e3"})
    EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
}

TEST(CliDuration, FormatsShortly) {
  EXPECT_EQ(format_duration(5000ms), "5s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(120000ms), "2m");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
}

TEST(CliArguments, RunTakesOptionsThenNameThenCommand) {
  const auto p = parse({"run", "--ttl", "3s", "--grace=1s", "--timeout", "2m", "-v", "--identity=me", "lock", "--",
                        "sh", "-c", "echo hi"});
  EXPECT_EQ(p.what, parsed_arguments::action::run);
  EXPECT_EQ(p.name, "lock");
  EXPECT_THAT(p.run.command, ElementsAre("sh", "-c", "echo hi"));
  EXPECT_EQ(p.common.ttl, 3s);
  EXPECT_EQ(p.run.grace, 1000ms);
  EXPECT_EQ(p.run.timeout, 120000ms);
  EXPECT_TRUE(p.common.verbose);
  EXPECT_EQ(p.common.identity, "me");
}

TEST(CliArguments, RunCommandKeepsItsOwnOptions) {
  // Without "--", COMMAND starts at the first word after NAME, and its options are its own.
  const auto p = parse({"run", "lock", "ls", "-l", "--help"});
  EXPECT_THAT(p.run.command, ElementsAre("ls", "-l", "--help"));
  // Options between NAME and COMMAND are still ours.
  const auto q = parse({"run", "lock", "--timeout=5s", "--", "--odd-command"});
  EXPECT_EQ(q.run.timeout, 5000ms);
  EXPECT_THAT(q.run.command, ElementsAre("--odd-command"));
}

TEST(CliArguments, EndpointsComeFromTheFlagTheEnvironmentOrTheDefault) {
  EXPECT_THAT(parse({"status", "x"}).common.endpoints, ElementsAre("http://127.0.0.1:2379"));
  EXPECT_THAT(parse({"status", "x"}, "http://a:1, http://b:2").common.endpoints,
              ElementsAre("http://a:1", "http://b:2"));
  EXPECT_THAT(parse({"status", "--endpoints=http://c:3", "x"}, "http://a:1").common.endpoints,
              ElementsAre("http://c:3"));
}

TEST(CliArguments, HelpAndVersion) {
  EXPECT_EQ(parse({"--help"}).what, parsed_arguments::action::show_help);
  EXPECT_EQ(parse({"--help"}).help_for, std::nullopt);
  EXPECT_EQ(parse({"watch", "--help"}).help_for, subcommand::watch);
  EXPECT_EQ(parse({"help", "run"}).help_for, subcommand::run);
  EXPECT_EQ(parse({"--version"}).what, parsed_arguments::action::show_version);
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("--grace"));
  // Issue 17: each command's help lists its own options only.
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("--identity"));
  EXPECT_THAT(help_text(subcommand::watch), HasSubstr("--ttl"));
  EXPECT_THAT(help_text(subcommand::status), Not(HasSubstr("--ttl")));
  EXPECT_THAT(help_text(subcommand::status), Not(HasSubstr("--identity")));
  EXPECT_THAT(help_text(subcommand::status), Not(HasSubstr("--timeout")));
  EXPECT_THAT(help_text(subcommand::run), Not(HasSubstr("--count")));
}

TEST(CliArguments, WatchAndStatusOptions) {
  const auto w = parse({"watch", "--json", "--contend", "--count", "3", "x"});
  EXPECT_TRUE(w.watch.json);
  EXPECT_TRUE(w.watch.contend);
  EXPECT_EQ(w.watch.count, 3u);
  EXPECT_TRUE(parse({"status", "--json", "x"}).status.json);
}

// --log-format: how -v writes the library's diagnostics; text (none) unless asked, as before the option existed.
TEST(CliArguments, LogFormatIsTextLogfmtOrJson) {
  EXPECT_EQ(parse({"status", "x"}).common.structured, std::nullopt);
  EXPECT_EQ(parse({"status", "--log-format=text", "x"}).common.structured, std::nullopt);
  EXPECT_EQ(parse({"watch", "--log-format", "logfmt", "x"}).common.structured, log_format::logfmt);
  EXPECT_EQ(parse({"-v", "--log-format=json", "run", "x", "--", "true"}).common.structured, log_format::json);
  EXPECT_EQ(parse({"put", "--fenced", "--log-format=json", "k", "v"}).common.structured, log_format::json);
  EXPECT_THAT(usage_message({"status", "--log-format=xml", "x"}),
              HasSubstr("--log-format: 'xml' is not a log format (use text, logfmt or json)"));
  EXPECT_THAT(usage_message({"status", "--log-format", "x"}), HasSubstr("'x' is not a log format"));
  EXPECT_THAT(help_text(std::nullopt), HasSubstr("--log-format"));
}

// As etcdctl: `clusterlock --endpoints X run ...` (the options every command has, before the command).
TEST(CliArguments, OptionsEveryCommandHasMayComeBeforeTheCommand) {
  const auto p = parse({"--endpoints", "http://e:1", "-v", "--request-timeout=2s", "run", "--ttl", "3s", "x", "--",
                        "true"});
  EXPECT_EQ(p.what, parsed_arguments::action::run);
  EXPECT_EQ(p.common.endpoints, std::vector<std::string>{"http://e:1"});
  EXPECT_TRUE(p.common.verbose);
  EXPECT_EQ(p.name, "x");
  const auto s = parse({"--endpoints=http://e:2", "status", "y"});
  EXPECT_EQ(s.what, parsed_arguments::action::status);
  EXPECT_EQ(s.common.endpoints, std::vector<std::string>{"http://e:2"});
}

TEST(CliArguments, BadUsageSaysWhat) {
  EXPECT_THAT(usage_message({}), HasSubstr("command is missing"));
  EXPECT_THAT(usage_message({"--ttl=5", "status", "x"}), HasSubstr("'--ttl=5' before the command"));
  EXPECT_THAT(usage_message({"--endpoints", "http://e:1"}), HasSubstr("before the command"));
  EXPECT_THAT(usage_message({"run", "x"}), HasSubstr("COMMAND is missing"));
  EXPECT_THAT(usage_message({"run", "x", "--"}), HasSubstr("COMMAND is missing"));
  EXPECT_THAT(usage_message({"status", "--json"}), HasSubstr("NAME is missing"));
  EXPECT_THAT(usage_message({"run", "--ttl"}), HasSubstr("--ttl needs a value"));
  EXPECT_THAT(usage_message({"status", "--ttl=0", "x"}), HasSubstr("--ttl"));
  // Issue 17: the same words for 0 and a negative value; NAME (not COMMAND) is what `run -- true` lacks.
  for (const char* option : {"--ttl", "--request-timeout"}) {
    EXPECT_THAT(usage_message({"run", std::string(option) + "=0", "x", "--", "true"}), HasSubstr("must be positive"));
    EXPECT_THAT(usage_message({"run", option, "-1", "x", "--", "true"}), HasSubstr("must be positive")) << option;
  }
  EXPECT_THAT(usage_message({"run", "--grace=-1s", "x", "--", "true"}), HasSubstr("--grace: must not be negative"));
  EXPECT_THAT(usage_message({"run", "--", "true"}), HasSubstr("the lock's NAME is missing"));
  EXPECT_EQ(parse({"--help", "run"}).help_for, subcommand::run) << "clusterlock --help run: run's help";
  // Issue 17: etcd refuses a longer lease; the command waited for it for ever. Refused here, before any I/O.
  EXPECT_THAT(usage_message({"run", "--ttl=9000000001", "x", "--", "true"}), HasSubstr("--ttl: at most 9000000000s"));
  EXPECT_EQ(parse({"run", "--ttl=9000000000", "x", "--", "true"}).common.ttl, etcd::max_lease_ttl);
  EXPECT_THAT(usage_message({"status", "--request-timeout=0", "x"}), HasSubstr("must be positive"));
  // Issue 17: --timeout 0 tries once (as flock -n); below 0 is refused as --grace's is.
  EXPECT_EQ(parse({"run", "--timeout=0", "x", "true"}).run.timeout, 0ms);
  EXPECT_THAT(usage_message({"run", "--timeout", "-1", "x", "true"}), HasSubstr("--timeout: must not be negative"));
  // Issue 17: each command takes only its own options. --ttl and --identity are a contender's.
  EXPECT_THAT(usage_message({"status", "--ttl=5s", "x"}), HasSubstr("status only reads"));
  EXPECT_THAT(usage_message({"status", "--identity=me", "x"}), HasSubstr("status only reads"));
  EXPECT_THAT(usage_message({"watch", "--identity=me", "x"}), HasSubstr("--identity is for a contender: add --contend"));
  EXPECT_EQ(parse({"watch", "--contend", "--identity=me", "--ttl=5", "x"}).common.identity, "me");
  EXPECT_THAT(usage_message({"status", "--endpoints=http://root:pw@e:2379", "x"}), Not(HasSubstr("pw")));
  EXPECT_THAT(usage_message({"status", "--json=yes", "x"}), HasSubstr("takes no value"));
  EXPECT_THAT(usage_message({"status", "--contend", "x"}), HasSubstr("unknown option '--contend'"));
  EXPECT_THAT(usage_message({"status", "-x", "x"}), HasSubstr("unknown option '-x'"));
  EXPECT_THAT(usage_message({"status", "--cert=c.pem", "x"}), HasSubstr("--cert and --key go together"));
  // Issue 17: TLS files were not looked at for http:// endpoints, and an empty identity became the default.
  EXPECT_THAT(usage_message({"status", "--endpoints=https://e:2379", "--cacert=/no/such/ca.pem", "x"}),
              HasSubstr("--cacert: cannot read '/no/such/ca.pem'"));
  EXPECT_THAT(usage_message({"status", "--endpoints=http://e:2379", "--cacert=/dev/null", "x"}),
              HasSubstr("--cacert is for https:// endpoints"));
  EXPECT_NO_THROW(parse({"status", "--endpoints=https://e:2379", "--cacert=/dev/null", "x"}));
  EXPECT_THAT(usage_message({"run", "--identity=", "x", "--", "true"}), HasSubstr("--identity: must not be empty"));
  EXPECT_THAT(usage_message({"status", "--endpoints=http://root:pw@e:2379", "x"}), HasSubstr("use --user"));
  EXPECT_THAT(usage_message({"watch", "--count=-1", "x"}), HasSubstr("--count"));
  EXPECT_THAT(usage_message({"status", "--user=u:p", "x"}), HasSubstr("never taken from the command line"));
  EXPECT_THAT(usage_message({"help", "nope"}), HasSubstr("unknown command 'nope'"));
}

TEST(CliArguments, ElectCampaignsWithAProposalAndPerhapsACommand) {
  const auto plain = parse({"elect", "--ttl=5s", "--timeout=1m", "jobs", "vm1:8080"});
  EXPECT_EQ(plain.what, parsed_arguments::action::elect);
  EXPECT_EQ(plain.name, "jobs");
  EXPECT_EQ(plain.elect.proposal, "vm1:8080");
  EXPECT_FALSE(plain.elect.listen);
  EXPECT_TRUE(plain.run.command.empty());
  EXPECT_EQ(plain.common.ttl, 5s);
  EXPECT_EQ(plain.run.timeout, 60000ms);
  // COMMAND after PROPOSAL, with or without "--"; from its first word on, every word is COMMAND's.
  const auto with = parse({"elect", "jobs", "p", "--grace=1s", "--", "sh", "-c", "x"});
  EXPECT_THAT(with.run.command, ElementsAre("sh", "-c", "x"));
  EXPECT_EQ(with.run.grace, 1000ms);
  EXPECT_THAT(parse({"elect", "jobs", "p", "ls", "-l", "--listen"}).run.command, ElementsAre("ls", "-l", "--listen"));
}

TEST(CliArguments, ElectListenObservesOnly) {
  const auto l = parse({"elect", "-l", "--json", "jobs"});
  EXPECT_EQ(l.what, parsed_arguments::action::elect);
  EXPECT_TRUE(l.elect.listen);
  EXPECT_TRUE(l.elect.json);
  EXPECT_EQ(l.name, "jobs");
  EXPECT_TRUE(parse({"elect", "jobs", "--listen"}).elect.listen);
  EXPECT_THAT(usage_message({"elect", "--listen", "jobs", "p"}), HasSubstr("--listen only observes"));
  EXPECT_THAT(usage_message({"elect", "--listen", "--ttl=5s", "jobs"}), HasSubstr("--ttl is for a candidate"));
  EXPECT_THAT(usage_message({"elect", "-l", "--timeout=1s", "jobs"}), HasSubstr("--timeout is for a candidate"));
  EXPECT_THAT(usage_message({"elect", "--json", "jobs", "p"}), HasSubstr("--json is for --listen"));
}

TEST(CliArguments, ElectBadUsageSaysWhat) {
  EXPECT_THAT(usage_message({"elect"}), HasSubstr("the election's NAME is missing"));
  EXPECT_THAT(usage_message({"elect", "jobs"}), HasSubstr("PROPOSAL is missing"));
  EXPECT_THAT(usage_message({"elect", "jobs", ""}), HasSubstr("PROPOSAL must not be empty"));
  EXPECT_THAT(usage_message({"elect", "jobs", "--", "true"}), HasSubstr("NAME and PROPOSAL come before '--'"));
  EXPECT_THAT(usage_message({"elect", "jobs", "p", "--"}), HasSubstr("COMMAND is missing after '--'"));
  EXPECT_THAT(usage_message({"elect", "--grace=1s", "jobs", "p"}), HasSubstr("--grace is for COMMAND"));
  EXPECT_THAT(usage_message({"elect", "--identity=me", "jobs", "p"}), HasSubstr("elect's PROPOSAL is what others see"));
  EXPECT_THAT(usage_message({"elect", "--count=1", "jobs", "p"}), HasSubstr("unknown option '--count=1' for 'clusterlock elect'"));
  EXPECT_EQ(parse({"help", "elect"}).help_for, subcommand::elect);
  EXPECT_THAT(help_text(subcommand::elect), HasSubstr("--listen"));
  EXPECT_THAT(help_text(subcommand::elect), Not(HasSubstr("--identity")));
}

TEST(CliArguments, PutAndDelWriteOnlyFenced) {
  const auto put = parse({"put", "--fenced", "config/x", "v"});
  EXPECT_EQ(put.what, parsed_arguments::action::put);
  EXPECT_EQ(put.fenced.key, "config/x");
  EXPECT_EQ(put.fenced.value, "v");
  EXPECT_EQ(parse({"put", "--fenced", "k", ""}).fenced.value, "") << "an empty value is a value";
  EXPECT_EQ(parse({"put", "--fenced", "--", "k", "-1"}).fenced.value, "-1");
  const auto del = parse({"del", "k", "--fenced"});
  EXPECT_EQ(del.what, parsed_arguments::action::del);
  EXPECT_EQ(del.fenced.key, "k");
  EXPECT_EQ(parse({"put", "--help"}).help_for, subcommand::put);
  EXPECT_THAT(help_text(subcommand::del), HasSubstr("--fenced"));

  EXPECT_THAT(usage_message({"put", "k", "v"}), HasSubstr("for a write that is not fenced use etcdctl put KEY VALUE"));
  EXPECT_THAT(usage_message({"del", "k"}), HasSubstr("use etcdctl del KEY"));
  EXPECT_THAT(usage_message({"put", "--fenced", "k"}), HasSubstr("VALUE is missing"));
  EXPECT_THAT(usage_message({"put", "--fenced"}), HasSubstr("KEY is missing"));
  EXPECT_THAT(usage_message({"del", "--fenced", "k", "v"}), HasSubstr("unexpected argument 'v'"));
  EXPECT_THAT(usage_message({"put", "--fenced", "--ttl=5s", "k", "v"}), HasSubstr("put takes no lease"));
  EXPECT_THAT(usage_message({"del", "--fenced", "--json", "k"}), HasSubstr("unknown option '--json'"));
}

}  // namespace
}  // namespace clusterlock::cli

namespace clusterlock::cli {
namespace {

TEST(CliArguments, RunSlotsTakesAWholeNumberOfPermits) {
  auto a = parse({"run", "--slots", "3", "jobs", "--", "true"});
  EXPECT_EQ(a.run.slots, 3u);
  EXPECT_EQ(a.name, "jobs");
  EXPECT_EQ(parse({"run", "jobs", "--", "true"}).run.slots, 0u);  // the lock
  EXPECT_EQ(parse({"run", "--slots=1000000", "jobs", "--", "true"}).run.slots, 1000000u);
  for (const char* bad : {"0", "-1", "x", "2.5", "1000001", ""})
    EXPECT_THAT(usage_message({"run", std::string("--slots=") + bad, "jobs", "--", "true"}),
                HasSubstr("--slots: '" + std::string(bad) + "' is not a whole number from 1 to 1000000"));
  EXPECT_THAT(usage_message({"status", "--slots", "2", "jobs"}), HasSubstr("unknown option '--slots'"));
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("--slots N"));
}

// run --read, run --write: the read-write lock's mode, anywhere among run's options; one kind of lock per run.
TEST(CliArguments, RunReadOrWriteTakesAModeAndExcludesSlots) {
  EXPECT_EQ(parse({"run", "jobs", "--", "true"}).run.rw, rw_mode::none);
  EXPECT_EQ(parse({"run", "--read", "jobs", "--", "true"}).run.rw, rw_mode::read);
  const auto w = parse({"run", "jobs", "--write", "--timeout=0", "--", "true"});
  EXPECT_EQ(w.run.rw, rw_mode::write);
  EXPECT_EQ(w.run.command, std::vector<std::string>{"true"});
  EXPECT_EQ(parse({"run", "--read", "--read", "jobs", "true"}).run.rw, rw_mode::read);
  EXPECT_THAT(usage_message({"run", "--read", "--slots=2", "jobs", "--", "true"}),
              HasSubstr("--read and --slots exclude each other: run holds the lock, a permit of a semaphore "
                        "(--slots N), or a read-write lock for reading (--read) or writing (--write)"));
  EXPECT_THAT(usage_message({"run", "--write", "jobs", "--slots", "2", "--", "true"}),
              HasSubstr("--slots and --write exclude each other"));
  EXPECT_THAT(usage_message({"run", "--write", "--read", "jobs", "--", "true"}),
              HasSubstr("--read and --write exclude each other"));
  EXPECT_THAT(usage_message({"run", "--read=yes", "jobs", "--", "true"}), HasSubstr("--read takes no value"));
  EXPECT_THAT(usage_message({"status", "--read", "jobs"}), HasSubstr("unknown option '--read'"));
  EXPECT_THAT(usage_message({"elect", "--write", "jobs", "p"}), HasSubstr("unknown option '--write'"));
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("--read, --write"));
}

// run --watch, elect --watch: the plain lock's watch scope (options::watch); predecessor only for a plain lock.
TEST(CliArguments, RunAndElectTakeAWatchScope) {
  EXPECT_EQ(parse({"run", "jobs", "--", "true"}).run.watch, watch_scope::line);
  EXPECT_EQ(parse({"elect", "jobs", "p"}).run.watch, watch_scope::line);
  EXPECT_EQ(parse({"run", "--watch", "predecessor", "jobs", "--", "true"}).run.watch, watch_scope::predecessor);
  EXPECT_EQ(parse({"run", "jobs", "--watch=predecessor", "true"}).run.watch, watch_scope::predecessor);
  EXPECT_EQ(parse({"run", "--watch=predecessor", "--watch=line", "jobs", "true"}).run.watch, watch_scope::line);
  EXPECT_EQ(parse({"elect", "--watch=predecessor", "jobs", "p"}).run.watch, watch_scope::predecessor);
  EXPECT_EQ(parse({"elect", "jobs", "p", "--watch", "predecessor", "--", "true"}).run.watch, watch_scope::predecessor);
  // The whole line is every kind's: line goes with a semaphore or a read-write lock, predecessor does not.
  EXPECT_EQ(parse({"run", "--slots=2", "--watch=line", "jobs", "true"}).run.watch, watch_scope::line);
  for (const char* kind : {"--slots=2", "--read", "--write"}) {
    const std::string flag = std::string(kind).substr(0, std::string(kind).find('='));
    const std::string why = "--watch predecessor is for the plain lock, not with " + flag +
                            ": a semaphore's and a read-write lock's contenders follow their whole line";
    EXPECT_THAT(usage_message({"run", kind, "--watch=predecessor", "jobs", "--", "true"}), HasSubstr(why));
    EXPECT_THAT(usage_message({"run", "--watch", "predecessor", "jobs", kind, "--", "true"}), HasSubstr(why));
  }
  for (const char* bad : {"", "Line", "prefix", "pred"})
    EXPECT_THAT(usage_message({"run", std::string("--watch=") + bad, "jobs", "--", "true"}),
                HasSubstr("--watch: '" + std::string(bad) + "' is not a watch scope (use line or predecessor)"));
  EXPECT_THAT(usage_message({"run", "jobs", "--watch"}), HasSubstr("--watch needs a value"));
  EXPECT_THAT(usage_message({"elect", "--listen", "--watch=predecessor", "jobs"}),
              HasSubstr("--watch is for a candidate: leave out --listen, or it"));
  EXPECT_THAT(usage_message({"status", "--watch=line", "jobs"}), HasSubstr("unknown option '--watch=line'"));
  EXPECT_THAT(usage_message({"watch", "--contend", "--watch=line", "jobs"}), HasSubstr("unknown option '--watch=line'"));
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("--watch SCOPE"));
  EXPECT_THAT(help_text(subcommand::run), HasSubstr("predecessor"));
  EXPECT_THAT(help_text(subcommand::elect), HasSubstr("--watch SCOPE"));
  EXPECT_THAT(help_text(subcommand::status), Not(HasSubstr("--watch")));
  EXPECT_THAT(help_text(subcommand::watch), Not(HasSubstr("--watch")));
}

}  // namespace
}  // namespace clusterlock::cli
