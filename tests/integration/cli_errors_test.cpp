// The `clusterlock` command when things are wrong: etcd unreachable, refusing us, or not etcd at all; bad usage;
// help. The real binary against real etcd (and, where the point is a server that is not etcd, a fake one).
#include "support/cli_fixture.hpp"
#include "support/fake_http_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

namespace clusterlock::test {
namespace {

// An HTTP server that is not etcd, answering every request with `reply`, on a thread of its own while the command
// runs.
class foreign_server {
 public:
  explicit foreign_server(canned_reply reply) : server_(io_.get_executor(), answer(std::move(reply))) {}
  ~foreign_server() {
    io_.stop();
    thread_.join();
  }
  std::string url() const { return server_.url(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  fake_http_server server_;
  std::thread thread_{[this] { io_.run(); }};
};

TEST_F(Cli, EtcdUnreachableWhileRunningEndsTheCommandWithUnknown) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--request-timeout=500ms", "--grace=2s", name_, "--", sh, "-c",
                        "trap 'echo TERM >> " + file("child").string() + "; exit 0' TERM; echo started >> " +
                            file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  cluster().stop(0);  // frozen with its sockets open: requests time out
  const auto code = run->wait_for_exit(15s);
  cluster().cont(0);
  EXPECT_EQ(code, 123) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("UNKNOWN"));
  EXPECT_THAT(run->err(), HasSubstr("request deadline passed")) << "it says why";
  // Its exit does not wait for a release that cannot succeed, and says what that leaves behind.
  EXPECT_THAT(run->err(), HasSubstr("stands until its lease's TTL (2s) runs out")) << run->report();
  EXPECT_THAT(read_file(file("child")), HasSubstr("TERM"));
}

TEST_F(Cli, TlsClientCertificatesAndAuthentication) {
  etcd_cluster secure(etcd_options{.tls = true, .client_cert_auth = true, .auth = true});
  const std::vector<std::string> tls = {"--endpoints=" + secure.endpoints_csv(), "--cacert=" + secure.ca_file(),
                                        "--cert=" + secure.client_cert_file(), "--key=" + secure.client_key_file(),
                                        "--user=root"};
  auto args = [&](std::vector<std::string> command) {
    command.insert(command.begin() + 1, tls.begin(), tls.end());
    return command;
  };
  const auto ok = cli_run(args({"status", "--json", name_}), {"CLUSTERLOCK_PASSWORD=" + secure.root_password()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"holder\":null"));

  // The password is clusterlock's: COMMAND does not inherit it.
  const auto ran = cli_run(args({"run", name_, "--", sh, "-c", "test -z \"$CLUSTERLOCK_PASSWORD\" && exit 5"}),
                           {"CLUSTERLOCK_PASSWORD=" + secure.root_password()});
  EXPECT_EQ(ran.exit_code, 5) << ran.err;

  // A wrong password is not worth waiting for: status and run both fail at once.
  const auto wrong = cli_run(args({"status", name_}), {"CLUSTERLOCK_PASSWORD=wrong"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("authentication failed"));
  const auto wrong_run = cli_run(args({"run", name_, "--", sh, "-c", "exit 0"}), {"CLUSTERLOCK_PASSWORD=wrong"});
  EXPECT_EQ(wrong_run.exit_code, 1) << wrong_run.err;
  EXPECT_THAT(wrong_run.err, HasSubstr("authentication failed"));

  // A server certificate we cannot verify (no --cacert): refused at once, not waited on.
  const auto untrusted = cli_run({"run", "--endpoints=" + secure.endpoints_csv(), "--cert=" + secure.client_cert_file(),
                                  "--key=" + secure.client_key_file(), name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.err;
  EXPECT_THAT(untrusted.err, HasSubstr("TLS handshake failed"));

  // No password and no terminal to ask on: bad usage.
  const auto none = cli_run(args({"status", name_}));
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_THAT(none.err, HasSubstr("CLUSTERLOCK_PASSWORD"));
}

// A user who may read the lock's keys but not write them: run must say so and fail, not wait (issue 10).
TEST_F(Cli, RunWithoutWritePermissionFailsAtOnceWithEtcdsReason) {
  etcd_cluster secure(etcd_options{.auth = true});
  secure.etcdctl({"user", "add", "reader:readerpw"});
  secure.etcdctl({"role", "add", "reader"});
  secure.etcdctl({"role", "grant-permission", "reader", "--prefix=true", "read", name_ + "/"});
  secure.etcdctl({"user", "grant-role", "reader", "reader"});
  const auto r = cli_run({"run", "--endpoints=" + secure.endpoints_csv(), "--user=reader", name_, "--", sh, "-c", "exit 0"},
                         {"CLUSTERLOCK_PASSWORD=readerpw"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("permission denied"));
}

TEST_F(Cli, StatusShowsTheHolderAndTheQueue) {
  const auto free = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(free.exit_code, 0) << free.err;
  EXPECT_THAT(free.out, HasSubstr("free"));

  auto alice = cli_start({"run", endpoints(), "--identity=alice", name_, "--", "sleep", "30"}, "alice");
  ASSERT_TRUE(queue_reaches(1)) << alice->report();
  auto bob = cli_start({"run", endpoints(), "--identity=bob", name_, "--", "sleep", "30"}, "bob");
  ASSERT_TRUE(queue_reaches(2)) << bob->report();

  const auto table = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("held by alice"));
  EXPECT_THAT(table.out, HasSubstr("1 waiting"));
  const auto rows = lines_of(table.out);
  ASSERT_EQ(rows.size(), 4u) << table.out;  // summary, header, holder, one waiter
  EXPECT_THAT(rows[2], StartsWith("holder"));
  EXPECT_THAT(rows[2], HasSubstr("alice"));
  EXPECT_THAT(rows[3], StartsWith("1 "));
  EXPECT_THAT(rows[3], HasSubstr("bob"));

  const auto as_json = cli_run({"status", "--json", endpoints(), name_});
  EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
  const json::value doc = json::parse(as_json.out);
  EXPECT_EQ(doc.at("name").as_string(), name_);
  const auto& holder = doc.at("holder").as_object();
  EXPECT_EQ(holder.at("identity").as_string(), "alice");
  EXPECT_THAT(std::string(holder.at("key").as_string()), StartsWith(name_ + "/"));
  const auto& waiters = doc.at("waiters").as_array();
  ASSERT_EQ(waiters.size(), 1u);
  EXPECT_EQ(waiters[0].at("identity").as_string(), "bob");
  EXPECT_LT(holder.at("fencing_token").to_number<std::int64_t>(),
            waiters[0].at("fencing_token").to_number<std::int64_t>());

  alice->signal(SIGTERM);
  bob->signal(SIGTERM);
  EXPECT_EQ(alice->wait_for_exit(10s), 128 + SIGTERM) << alice->report();
  EXPECT_EQ(bob->wait_for_exit(10s), 128 + SIGTERM) << bob->report();
}

TEST_F(Cli, WatchPrintsHolderChangesAsJsonLines) {
  auto watch = cli_start({"watch", "--json", "--count=3", endpoints(), name_}, "watch");
  ASSERT_TRUE(eventually([&] { return !watch->out().empty(); }, 10s)) << watch->report();  // nobody holds it

  const auto r = cli_run({"run", endpoints(), "--identity=carol", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(watch->wait_for_exit(10s), 0) << watch->report();

  const auto lines = lines_of(watch->out());
  ASSERT_EQ(lines.size(), 3u) << watch->report();
  std::vector<json::object> events;
  for (const auto& line : lines) events.push_back(json::parse(line).as_object());
  for (const auto& e : events) {
    EXPECT_EQ(e.at("event").as_string(), "holder_changed");
    EXPECT_THAT(std::string(e.at("time").as_string()), ::testing::EndsWith("Z"));
    EXPECT_TRUE(e.at("error").is_null());  // only unknown events carry one
  }
  EXPECT_TRUE(events[0].at("holder").is_null());
  EXPECT_EQ(events[1].at("holder").as_string(), "carol");
  EXPECT_GT(events[1].at("fencing_token").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(events[2].at("holder").is_null());

  // --contend: its own ACQUIRED as well, and its key freed on SIGTERM.
  auto contender = cli_start({"watch", "--json", "--contend", "--identity=dave", endpoints(), name_}, "contender");
  ASSERT_TRUE(eventually([&] { return lines_of(contender->out()).size() >= 2; }, 10s)) << contender->report();
  const auto first = json::parse(lines_of(contender->out())[0]).as_object();
  EXPECT_EQ(first.at("event").as_string(), "acquired");
  EXPECT_EQ(first.at("holder").as_string(), "dave");
  contender->signal(SIGTERM);
  EXPECT_EQ(contender->wait_for_exit(10s), 0) << contender->report();
  EXPECT_EQ(queue_length(), 0u);
}

// Issue 17: a web server that is not etcd was "no endpoint answered", and run waited for it for ever; a 404 was
// "etcd returned an error", with no status.
TEST_F(Cli, AnEndpointThatIsNotEtcdIsNamedWithWhatItAnswered) {
  foreign_server web({501, {{"Content-Type", "text/html"}}, "<html>Unsupported method ('POST')</html>"});
  for (const std::string command : {"status", "watch", "run"}) {
    std::vector<std::string> args = {command, "--endpoints=" + web.url(), name_};
    if (command == "run") args.insert(args.end(), {"--", sh, "-c", "exit 0"});
    const auto r = cli_run(args);
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(web.url() + " answered HTTP 501, not as etcd's v3 JSON gateway does")) << command;
  }
  foreign_server wrong_path({404, {{"Content-Type", "text/plain"}}, "404 page not found\n"});
  const auto r = cli_run({"status", "--endpoints=" + wrong_path.url(), name_});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(wrong_path.url() + " answered HTTP 404"));
}

// Issue 17: https:// on etcd's plain port was "no endpoint answered"; on another plain-HTTP server, "TLS handshake
// failed (certificate or host name not accepted)".
TEST_F(Cli, AnHttpsUrlOnAPlainPortIsToldToTryHttp) {
  const std::string plain = cluster().client_urls().front();  // http://127.0.0.1:PORT
  ASSERT_THAT(plain, StartsWith("http://"));
  const std::string secure = "https://" + plain.substr(7);
  const auto status = cli_run({"status", "--endpoints=" + secure, name_});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  EXPECT_THAT(status.err, HasSubstr(secure + " does not speak TLS: try " + plain));
  const auto run = cli_run({"run", "--endpoints=" + secure, name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("does not speak TLS: try http://"));

  foreign_server web({200, {}, "{}"});
  const std::string web_secure = "https://" + web.url().substr(7);
  const auto other = cli_run({"status", "--endpoints=" + web_secure, name_});
  EXPECT_EQ(other.exit_code, 1) << other.err;
  EXPECT_THAT(other.err, HasSubstr(web_secure + " does not speak TLS: try " + web.url()));
}

TEST_F(Cli, BadUsageExitsWithTwoAndSaysWhy) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "command is missing"},
      {{"frobnicate", "x"}, "unknown command 'frobnicate'"},
      {{"status"}, "NAME is missing"},
      {{"run", "x"}, "COMMAND is missing"},
      {{"run", "--ttl", "abc", "x", "true"}, "--ttl"},
      {{"run", "--ttl=500ms", "x", "true"}, "whole number of seconds"},
      {{"status", "--ttl=5", "x"}, "status only reads"},  // issue 17: it was accepted and ignored
      {{"watch", "--identity=me", "x"}, "add --contend"},
      {{"run", "--timeout=-1", "x", "true"}, "--timeout: must not be negative"},
      {{"run", "--grace", "x"}, "--grace"},
      {{"status", "--bogus", "x"}, "unknown option '--bogus'"},
      {{"watch", "--count=0", "x"}, "--count"},
      {{"status", "x", "y"}, "unexpected argument 'y'"},
      {{"run", "--user=root:secret", "x", "--", "true"}, "never taken from the command line"},
      {{"status", "--endpoints=ftp://127.0.0.1:1", "x"}, "endpoints"},
      {{"run", "--watch=all", "x", "true"}, "--watch: 'all' is not a watch scope (use line or predecessor)"},
      {{"run", "--read", "--watch=predecessor", "x", "true"}, "--watch predecessor is for the plain lock"},
      {{"elect", "--listen", "--watch=predecessor", "x"}, "--watch is for a candidate"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = cli_run(args);
    EXPECT_EQ(r.exit_code, 2) << join_command(args) << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << join_command(args);
  }
}

TEST_F(Cli, UnreachableEtcdFailsWithinSecondsWhereWaitingWasNotAskedFor) {
  const std::string refused = "--endpoints=http://127.0.0.1:" + std::to_string(free_port());
  auto start = steady::now();
  const auto status = cli_run({"status", refused, name_});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  EXPECT_THAT(status.err, HasSubstr("cannot reach etcd"));
  EXPECT_LT(milliseconds_since(start), 5000);

  start = steady::now();
  const auto watch = cli_run({"watch", refused, name_});
  EXPECT_EQ(watch.exit_code, 1) << watch.err;
  EXPECT_LT(milliseconds_since(start), 5000);

  // An endpoint that accepts connections and never answers: the request timeout bounds the wait.
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  socklen_t length = sizeof address;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  start = steady::now();
  const auto stalled = cli_run({"status", "--request-timeout=300ms",
                                "--endpoints=http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)), name_});
  ::close(silent);
  EXPECT_EQ(stalled.exit_code, 1) << stalled.err;
  EXPECT_LT(milliseconds_since(start), 6000);

  // run keeps waiting (that is what it is for); -v says why, --timeout ends it.
  const auto run = cli_run({"run", "-v", "--timeout=2s", refused, name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(run.exit_code, 124) << run.err;
  EXPECT_THAT(run.err, HasSubstr("cannot reach etcd"));
  EXPECT_THAT(run.err, HasSubstr("gave up waiting"));
  for (const auto& line : lines_of(run.err))  // issue 17: with -v, errors too have a timestamp
    EXPECT_THAT(line, StartsWith("clusterlock: 20")) << "no timestamp";
}

// -v --log-format json: the library's diagnostics are JSON lines on stderr; the command's own messages stay text.
TEST_F(Cli, VerboseJsonLogWritesEachDiagnosticAsAJsonLine) {
  const std::string refused = "http://127.0.0.1:" + std::to_string(free_port());
  const auto status = cli_run({"status", "-v", "--log-format=json", "--endpoints=" + refused, name_});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  EXPECT_THAT(status.err, HasSubstr("cannot reach etcd")) << "the command still says why it failed";
  int failed_requests = 0;
  for (const auto& line : lines_of(status.err)) {
    if (line.starts_with("clusterlock: ")) continue;
    boost::system::error_code ec;
    const auto parsed = json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    ASSERT_TRUE(parsed.is_object()) << line;
    const auto& o = parsed.as_object();
    EXPECT_TRUE(o.contains("time") && o.contains("level") && o.contains("source") && o.contains("msg")) << line;
    if (o.contains("source") && o.at("source") == "request") {
      ++failed_requests;
      EXPECT_TRUE(o.contains("error") && o.contains("error_message")) << line;
      EXPECT_EQ(o.contains("endpoint") ? o.at("endpoint") : json::value(), json::value(refused)) << line;
    }
  }
  EXPECT_GE(failed_requests, 1) << status.err;
}

TEST_F(Cli, HelpPrintsUsage) {
  const auto top = cli_run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("Usage: clusterlock COMMAND"));
  EXPECT_THAT(top.out, HasSubstr("--endpoints"));
  const auto run = cli_run({"run", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("--grace"));
  EXPECT_THAT(run.out, HasSubstr("124"));
  const auto watch = cli_run({"help", "watch"});
  EXPECT_EQ(watch.exit_code, 0);
  EXPECT_THAT(watch.out, HasSubstr("--count"));
  const auto status = cli_run({"status", "-h"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_THAT(status.out, HasSubstr("--json"));
  EXPECT_THAT(status.out, Not(HasSubstr("--ttl")));  // issue 17: each command's help lists only its options
  EXPECT_THAT(status.out, Not(HasSubstr("--identity")));
  const auto help_first = cli_run({"--help", "run"});  // issue 17: this printed the top-level help
  EXPECT_EQ(help_first.exit_code, 0);
  EXPECT_THAT(help_first.out, HasSubstr("--grace"));
}

}  // namespace
}  // namespace clusterlock::test
