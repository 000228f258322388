// The help texts of the command and of each subcommand: every option a subcommand takes, and its exit codes.

#include "cli/arguments.hpp"

#include <string>

namespace clusterlock::cli {
namespace {

// For the commands that contend: run, and watch --contend (elect has its own words for --ttl).
constexpr const char* contender_options_help = R"(  --ttl DURATION           lease TTL, whole seconds (default 10s): how long a crashed holder
                           keeps the lock
  --identity TEXT          what others see as the holder (default: hostname-random UUID)

)";

constexpr const char* common_options_help = R"(Options for every command:
  --endpoints URLS         etcd client URLs, comma-separated (default: $CLUSTERLOCK_ENDPOINTS,
                           else http://127.0.0.1:2379); https:// URLs use TLS
  --request-timeout DURATION
                           deadline of one request to etcd (default 1s)
  --cacert FILE            CA certificate (PEM) that signed etcd's server certificate
  --cert FILE, --key FILE  client certificate and key (PEM), for etcd's --client-cert-auth
  --user NAME              etcd user; the password comes from $CLUSTERLOCK_PASSWORD, else it is
                           asked on the terminal (never from the command line)
  -v, --verbose            log lock events and etcd errors to stderr
  --log-format FORMAT      how -v writes the library's diagnostics: text (default), or one
                           logfmt or JSON line each (logfmt, json)
  -h, --help               show help
DURATION: 5s, 500ms, 2m, 1h, or a plain number of seconds.
)";

constexpr const char* command_help = R"(Usage: clusterlock COMMAND [OPTIONS] NAME ...

One cluster-wide lock, held in etcd (compatible with `etcdctl lock NAME`).

Commands:
  run NAME -- COMMAND [ARGS...]   wait for the lock NAME, run COMMAND while holding it,
                                  free it when COMMAND ends; stop COMMAND if the lock is lost
                                  (--slots N: a semaphore's permit; --read, --write: a
                                  read-write lock's)
  status NAME                     who holds the lock, and who waits for it
  watch NAME                      the lock's events as they happen, one line each
  elect NAME PROPOSAL [-- COMMAND [ARGS...]]
                                  campaign in the election NAME (as `etcdctl elect`), print our
                                  key and PROPOSAL when we lead, run COMMAND while leading
  elect --listen NAME             the leader's key and value, one line per change of leader
  put --fenced KEY VALUE          in run's or elect's COMMAND: write KEY (or delete it) only
  del --fenced KEY                while the lock is still ours, checked by etcd in the write
  help [COMMAND]                  this help, or a command's

)";

constexpr const char* command_help_tail = R"(
Run 'clusterlock COMMAND --help' for a command's own options and exit codes.
clusterlock --version prints the version.
)";

constexpr const char* run_help = R"(Usage: clusterlock run [OPTIONS] NAME -- COMMAND [ARGS...]

Waits for the lock NAME, runs COMMAND while holding it, and frees the lock when COMMAND ends.
COMMAND gets CLUSTERLOCK_NAME, CLUSTERLOCK_KEY, CLUSTERLOCK_FENCING_TOKEN,
CLUSTERLOCK_IDENTITY and CLUSTERLOCK_ENDPOINTS in its environment (see `clusterlock put --help`).
If the lock is lost while COMMAND runs, COMMAND's process group gets SIGTERM, and SIGKILL after the
grace period. SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to COMMAND (after --grace, a SIGTERM
is followed by SIGKILL); before COMMAND starts they make clusterlock stop waiting and leave the queue.

Options:
  --timeout DURATION       give up waiting for the lock after DURATION (default: wait forever);
                           0: try once, do not wait if another holds it
  --grace DURATION         time between SIGTERM and SIGKILL (default 5s); 0: SIGKILL at once
  --slots N                a permit of the semaphore NAME instead of the lock: at most N commands
                           at once across the fleet; every contender must give the same N
  --read, --write          NAME's read-write lock instead of the lock: --read shares it with other
                           readers, --write holds it alone; first come, first served (a reader
                           waits for every writer that asked before it). A plain lock or
                           `etcdctl lock` on NAME counts as a writer. --slots, --read and --write
                           exclude one another
  --watch SCOPE            what we watch: line (default), every key of the lock; or predecessor,
                           only the key just ahead of ours (as etcd's Go recipe: a release wakes
                           one waiter, for long lines; -v then shows no holder lines). The plain
                           lock only: predecessor not with --slots, --read or --write
)";

constexpr const char* run_help_tail = R"(
Exit status: COMMAND's own (128+N if signal N ended it), or
  122  the lock was lost while COMMAND ran: our key was deleted or our lease expired (REMOVED)
  123  the lock could not be proven any more while COMMAND ran: etcd unreachable (UNKNOWN)
  124  --timeout passed before the lock was acquired (with --timeout 0: another holds it)
  125  clusterlock itself failed
  126  COMMAND cannot be executed       127  COMMAND not found
  128+N  signal N stopped clusterlock while it waited for the lock
  1    etcd refused us (authentication, TLS, permissions), or --slots differs from an older contender's
  2    bad usage
)";

constexpr const char* status_help = R"(Usage: clusterlock status [OPTIONS] NAME

Shows who holds the lock NAME (identity, fencing token, key) and who waits for it, in order.
The fencing token is the holder key's create revision: it grows from holder to holder.
A semaphore's name (run --slots) shows its permit holders; a read-write lock's (run --read,
run --write) its readers ahead of the first writer, or the one writer, then who waits.

Options:
  --json                   one JSON object instead of the table

)";

constexpr const char* status_help_tail = R"(
Exit status: 0 shown, 1 etcd unreachable or refused us (within a few request timeouts), 2 bad usage.
)";

constexpr const char* watch_help = R"(Usage: clusterlock watch [OPTIONS] NAME

Prints one line per event of the lock NAME as it happens, with a timestamp: the current holder
first, then every change of holder. Runs until SIGINT or SIGTERM (or --count events).
It follows the oldest key of NAME only: of a semaphore (run --slots) the oldest permit holder, of
a read-write lock (run --read, --write) the first reader or the writer. `status` shows them all.

Options:
  --json                   one JSON object per line
  --contend                also contend for the lock, and print this contender's
                           ACQUIRED / REMOVED / UNKNOWN events
  --count N                exit after N events
With --contend:
)";

constexpr const char* watch_help_tail = R"(
Exit status: 0 done (count reached, or SIGINT/SIGTERM), 1 etcd unreachable or refused us at the
start, 2 bad usage.
)";

constexpr const char* elect_help = R"text(Usage: clusterlock elect [OPTIONS] NAME PROPOSAL [-- COMMAND [ARGS...]]
       clusterlock elect --listen [OPTIONS] NAME

Campaigns in the election NAME with PROPOSAL as our key's value. The keys are those of
`etcdctl elect NAME` (NAME/<lease id in hex>, the oldest leads), so the two take turns. When we
lead, prints our key on one line and PROPOSAL on the next, as `etcdctl elect` does.
Without COMMAND: leads until SIGINT or SIGTERM, then resigns (deletes our key) and exits 0.
With COMMAND: runs it while leading exactly as `clusterlock run` does (the same environment,
CLUSTERLOCK_IDENTITY being PROPOSAL; the same signals; COMMAND is stopped when leadership is lost).
With --listen: only observes, and prints the leader, then one line per change of leader: its key,
a space and its value; "(no leader)" when nobody leads.

Options:
  -l, --listen             observe only (no PROPOSAL, no COMMAND)
  --json                   with --listen: one JSON object per line (key, value, lease,
                           fencing_token, revision; key, value and lease null when nobody leads)
  --timeout DURATION       give up waiting to lead after DURATION (default: wait forever);
                           0: try once, do not wait if another leads
  --grace DURATION         with COMMAND: time between SIGTERM and SIGKILL (default 5s)
  --ttl DURATION           lease TTL, whole seconds (default 10s): how long a crashed leader
                           keeps leading
  --watch SCOPE            what we watch: line (default), every key of the election; or
                           predecessor, only the key just ahead of ours (as etcd's Go recipe: a
                           resignation wakes one candidate, for many candidates)

)text";

constexpr const char* elect_help_tail = R"(
Exit status: COMMAND's own (128+N if signal N ended it); without COMMAND 0 when SIGINT or SIGTERM
ended it (and --listen's too); or
  122  leadership was lost: our key was deleted or our lease expired (REMOVED)
  123  leadership could not be proven any more: etcd unreachable (UNKNOWN)
  124  --timeout passed before we led (with --timeout 0: another leads)
  125  clusterlock itself failed
  126  COMMAND cannot be executed       127  COMMAND not found
  128+N  signal N stopped clusterlock while it waited to lead (without COMMAND, SIGHUP or
         SIGQUIT while leading too: it resigns)
  1    etcd refused us (--listen: or did not answer at the start)     2  bad usage
)";

constexpr const char* fenced_help = R"(Usage: clusterlock put --fenced [OPTIONS] KEY VALUE
       clusterlock del --fenced [OPTIONS] KEY

For COMMAND of `clusterlock run` or `clusterlock elect`: writes VALUE at KEY (put) or deletes KEY
(del) only while the lock is still ours. One etcd transaction checks that the lock's key
($CLUSTERLOCK_KEY) still has its create revision ($CLUSTERLOCK_FENCING_TOKEN), and writes only
then, so a holder that lost the lock without knowing it cannot write. KEY gets no lease: it is
data, and stays; it must lie outside the lock's own keys (NAME/...). Not sent again after a
failure once it may have reached etcd. The endpoints default to $CLUSTERLOCK_ENDPOINTS, which run
and elect set for COMMAND. For a write that is not fenced, use etcdctl (etcdctl put KEY VALUE,
etcdctl del KEY).

Options:
  --fenced                 required: guard the write with the lock, as said above

)";

constexpr const char* fenced_help_tail = R"(
Exit status: 0 written (del: also when KEY did not exist), 122 the lock is no longer ours (its key is
gone or another's): nothing written, 1 etcd unreachable or refused us (when no answer came, the write
may or may not have been applied), 2 bad usage, or CLUSTERLOCK_KEY or CLUSTERLOCK_FENCING_TOKEN
not set or not valid (not inside run or elect).
)";

}  // namespace

std::string help_text(std::optional<subcommand> which) {
  if (!which) return std::string(command_help) + common_options_help + command_help_tail;
  switch (*which) {
    case subcommand::run: return std::string(run_help) + contender_options_help + common_options_help + run_help_tail;
    case subcommand::status: return std::string(status_help) + common_options_help + status_help_tail;
    case subcommand::watch:
      return std::string(watch_help) + contender_options_help + common_options_help + watch_help_tail;
    case subcommand::elect: return std::string(elect_help) + common_options_help + elect_help_tail;
    case subcommand::put:
    case subcommand::del: return std::string(fenced_help) + common_options_help + fenced_help_tail;
  }
  return command_help;
}

}  // namespace clusterlock::cli
