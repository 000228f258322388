// clusterlock run: wait for the lock, run COMMAND while holding it, stop COMMAND when the lock is lost. The same
// supervisor serves elect (supervise.hpp): an election is a lock whose key's value is the proposal.
//
// Everything happens on one io_context, in one thread: the lock's events, the signals (SIGCHLD included, through an
// Asio signal_set) and the timers each feed the supervisor below, which decides.

#include "cli/child_process.hpp"
#include "cli/commands.hpp"
#include "cli/contender.hpp"
#include "cli/exit_codes.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"
#include "cli/shutdown.hpp"
#include "cli/supervise.hpp"

#include <clusterlock/lock_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>

#include <algorithm>
#include <optional>
#include <system_error>

namespace clusterlock::cli {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// A signal that was ignored when we started stays ignored, for us and for COMMAND: `nohup` and a non-interactive
// shell's `cmd &` mean it.
std::optional<rw_lock::mode> access_of(rw_mode rw) {
  if (rw == rw_mode::none) return std::nullopt;
  return rw == rw_mode::read ? rw_lock::mode::read : rw_lock::mode::write;
}

bool ignored_at_start(int sig) {
  struct sigaction current{};
  return ::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
}

class run_supervisor {
 public:
  run_supervisor(asio::io_context& io, const parsed_arguments& args, options opts, hold_plan plan)
      : io_(io),
        args_(args),
        log_(args.common),
        opts_(with_diagnostics(std::move(opts))),
        plan_(std::move(plan)),
        lock_(io, opts_, args.run.slots, access_of(args.run.rw)),
        events_(lock_.subscribe()),
        signals_(io),
        timeout_timer_(io),
        grace_timer_(io) {
    signals_.add(SIGCHLD);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
      if (!ignored_at_start(sig)) signals_.add(sig);
  }

  int run() {
    asio::co_spawn(io_, handle_signals(), asio::detached);
    asio::co_spawn(io_, handle_events(), asio::detached);
    if (try_once()) {
      log_.info("trying " + subject() + " once as " + lock_.identity());
      // ACQUIRED starts COMMAND, as when waiting; a lock held by another ends us here.
      lock_.async_try_acquire([this](error_code ec, bool acquired) {
        if (ec) return on_acquire_failed(ec);
        if (!acquired)
          give_up(taken(), "; not waiting (--timeout 0)");
      });
    } else {
      if (args_.run.timeout) {
        timeout_timer_.expires_after(*args_.run.timeout);
        timeout_timer_.async_wait([this](error_code ec) {
          if (!ec) give_up("gave up waiting for " + subject() + " after " + format_duration(*args_.run.timeout));
        });
      }
      log_.info("waiting for " + subject() + " as " + lock_.identity());
      // Contends, and keeps contending; completes with an error that waiting cannot cure (a read-only user's
      // enqueue refused, a TTL etcd will not grant).
      lock_.async_acquire([this](error_code ec) { on_acquire_failed(ec); });
    }
    io_.run();
    return exit_code_;
  }

 private:
  enum class phase { waiting, running, finishing };  // running: COMMAND runs, or (without COMMAND) we lead

  // "the lock "NAME"", "the election "NAME"", "a permit of "NAME" (N slots)", "the read lock of "NAME"": what we
  // wait for; held(): what we hold, and may lose.
  std::string subject() const {
    if (lock_.slots() != 0)
      return "a permit of \"" + opts_.name + "\" (" + std::to_string(lock_.slots()) + " slots)";
    if (const auto access = lock_.access())
      return "the " + std::string(to_string(*access)) + " lock of \"" + opts_.name + "\"";
    return (plan_.election ? "the election \"" : "the lock \"") + opts_.name + "\"";
  }
  // --timeout 0 found it taken: why we would have waited.
  std::string taken() const {
    if (lock_.slots() != 0) return "every permit of \"" + opts_.name + "\" is taken";
    if (plan_.election) return subject() + " has a leader";
    // A reader waits only for a writer: one holding the lock, or one in line before us (behind readers who hold).
    if (lock_.access() == rw_lock::mode::read) return subject() + " would wait for a writer";
    return subject() + " is taken";
  }
  std::string held() const { return plan_.election ? "the leadership of \"" + opts_.name + "\"" : subject(); }
  const std::string& command_name() const { return plan_.command->argv.front(); }

  asio::awaitable<void> handle_signals() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      on_signal(sig);
    }
  }

  asio::awaitable<void> handle_events() {
    for (;;) {
      auto [ec, event] = co_await events_.async_wait_event(asio::as_tuple(asio::use_awaitable));
      if (ec == errc::events_dropped) continue;  // we keep up; and every event that matters is also a state
      if (ec) co_return;
      on_event(event);
    }
  }

  // The manager's own account of trouble it retries: -v shows it, a refusal ends the wait, and --timeout's message
  // says why we waited.
  options with_diagnostics(options o) {
    o.diagnostics = [this](const diagnostic& d) { on_diagnostic(d); };
    return o;
  }

  void on_diagnostic(const diagnostic& d) {
    if (phase_ == phase::finishing) return;
    trouble_.note(d);
    if (d.error == errc::slots_mismatch && phase_ == phase::waiting) {
      // Says which key disagrees, and how: the acquire's error alone cannot.
      log_.report_structured(d);
      log_.error(d.message);
      finish(exit_code::etcd_failed);
      return;
    }
    if (!etcd_failed(d)) return log_.report(d, d.message);
    if (is_refusal(d.error) && phase_ == phase::waiting) {
      log_.report_structured(d);
      log_.error(trouble_.describe(d.error, opts_));
      finish(exit_code::etcd_failed);
      return;
    }
    log_.report(d, trouble_.describe(d.error, opts_) + (phase_ == phase::waiting ? "; still waiting" : ""));
    last_etcd_error_ = d.error;
  }

  void on_acquire_failed(error_code ec) {
    if (!ec || ec == asio::error::operation_aborted || phase_ != phase::waiting) return;
    log_.error(ec == errc::slots_mismatch ? opts_.name + ": " + ec.message() : trouble_.describe(ec, opts_));
    finish(exit_code::etcd_failed);
  }

  void on_event(const lock_event& e) {
    if (phase_ == phase::finishing) return;
    last_etcd_error_ = {};  // etcd answered
    log_.info(describe(e));
    if (phase_ == phase::waiting) leaseless_.on_event(e, log_);
    if (phase_ == phase::waiting && e.kind == lock_event::acquired) {
      // The event may be older than the truth: start COMMAND only on a hold that is proven now.
      if (lock_.holds()) on_held(e);
      return;
    }
    if (phase_ == phase::running && lost_code_ == 0 &&
        (e.kind == lock_event::removed || e.kind == lock_event::unknown)) {
      lose(e);
    }
  }

  void on_held(const lock_event& e) {
    timeout_timer_.cancel();
    // What `etcdctl elect` prints when it wins: the key, then the value. A reader that is gone changes nothing:
    // leading is what was asked.
    if (plan_.election) print(lock_.key() + "\n" + lock_.identity() + "\n");
    if (plan_.command) return start_command(e);
    phase_ = phase::running;
    log_.info("leading " + subject() + ", fencing token " + std::to_string(e.fencing_token) +
              "; SIGINT or SIGTERM resigns");
  }

  void start_command(const lock_event& e) {
    const std::vector<std::string> env = {
        "CLUSTERLOCK_NAME=" + opts_.name,
        "CLUSTERLOCK_KEY=" + lock_.key(),
        "CLUSTERLOCK_FENCING_TOKEN=" + std::to_string(e.fencing_token),
        "CLUSTERLOCK_IDENTITY=" + lock_.identity(),
        "CLUSTERLOCK_ENDPOINTS=" + join_endpoints(opts_.endpoints),  // `clusterlock put --fenced` in COMMAND reaches our etcd
        "CLUSTERLOCK_PASSWORD",                // etcd's password is ours, not COMMAND's
    };
    try {
      child_.emplace(*plan_.command, env);
    } catch (const std::system_error& failure) {
      const bool exec_failed = std::string_view(failure.what()).starts_with("execve");
      const auto problem = exec_failed ? exec_problem(command_name(), failure.code().value())
                                       : command_problem{exit_code::internal_error,
                                                         std::string("cannot start COMMAND: ") + failure.what()};
      log_.error(problem.message);
      finish(problem.exit_code);
      return;
    }
    phase_ = phase::running;
    log_.info("started " + command_name() + " (pid " + std::to_string(child_->pid()) + ") holding " + held() +
              ", fencing token " + std::to_string(e.fencing_token));
  }

  void lose(const lock_event& e) {
    lost_code_ = e.kind == lock_event::removed ? exit_code::lock_removed : exit_code::lock_unknown;
    const std::string reason =
        e.kind == lock_event::removed
            ? "REMOVED: our key was deleted or our lease expired"
            : "UNKNOWN: etcd could not confirm in time that we still hold it" + (e.error ? ": " + e.error.message() : "");
    if (!child_) {
      log_.error("lost " + held() + " (" + reason + "); exiting with " + std::to_string(lost_code_));
      finish(lost_code_);
      return;
    }
    const bool at_once = args_.run.grace.count() == 0;
    log_.error("lost " + held() + " (" + reason + "); sending " +
               (at_once ? "SIGKILL to " + command_name() + " (--grace 0)"
                        : "SIGTERM to " + command_name() + ", SIGKILL in " + format_duration(args_.run.grace)));
    terminate_command();
  }

  // SIGTERM to COMMAND's group now, SIGKILL after the grace period (once); with no grace period, SIGKILL now.
  void terminate_command() {
    if (args_.run.grace.count() == 0) {
      child_->signal(SIGKILL);
      return;
    }
    child_->signal(SIGTERM, true);
    if (grace_started_) return;
    grace_started_ = true;
    grace_timer_.expires_after(args_.run.grace);
    grace_timer_.async_wait([this](error_code ec) {
      if (ec || !child_ || !child_->running()) return;
      log_.error(command_name() + " still runs " + format_duration(args_.run.grace) +
                 " after SIGTERM: sending SIGKILL");
      child_->signal(SIGKILL);
    });
  }

  void on_signal(int sig) {
    if (sig == SIGCHLD) {
      if (!child_) return;
      const auto status = child_->poll();
      if (status) on_command_ended(*status);
      return;
    }
    switch (phase_) {
      case phase::waiting:
        log_.info("got " + signal_name(sig) + " while waiting: leaving the queue");
        finish(exit_code::signal_base + sig);
        break;
      case phase::running:
        if (!child_) {  // elect without COMMAND: a signal resigns
          log_.info("got " + signal_name(sig) + ": resigning");
          finish(sig == SIGINT || sig == SIGTERM ? exit_code::success : exit_code::signal_base + sig);
          break;
        }
        log_.info("passing " + signal_name(sig) + " on to " + command_name());
        if (sig == SIGTERM) {
          terminate_command();
        } else {
          child_->signal(sig);
        }
        break;
      case phase::finishing:
        break;  // we are on our way out already
    }
  }

  void on_command_ended(int wait_status) {
    grace_timer_.cancel();
    const std::string what = command_name() + " " + describe_wait_status(wait_status);
    if (lost_code_ != 0) {
      log_.error(what + " after " + held() + " was lost; exiting with " + std::to_string(lost_code_));
      finish(lost_code_);
      return;
    }
    log_.info(what + "; releasing the lock");
    finish(exit_status_of(wait_status));
  }

  bool try_once() const { return args_.run.timeout && args_.run.timeout->count() == 0; }

  // --timeout: `what` happened before we held the lock; say who holds it, or why etcd did not answer.
  void give_up(const std::string& what, const std::string& then = {}) {
    if (phase_ != phase::waiting) return;
    std::string why, notes;
    for (const auto& holder : lock_.holders()) {
      if (holder.key == lock_.key()) continue;
      why += (why.empty() ? " (held by " : ", ") + identity_text(holder.identity) + ", fencing token " +
             std::to_string(holder.fencing_token);
      if (holder.lease == 0 && !leaseless_.told(holder.key)) notes += "; " + leaseless_note(holder.key);
    }
    if (!why.empty()) {
      why += ")" + notes;
    } else if (last_etcd_error_) {
      why = " (" + trouble_.describe(last_etcd_error_, opts_) + ")";
    }
    log_.error(what + why + then);
    finish(exit_code::timed_out);
  }

  // Frees the lock (only once COMMAND has ended, or was never started) and leaves.
  void finish(int code) {
    if (phase_ == phase::finishing) return;
    phase_ = phase::finishing;
    exit_code_ = code;
    timeout_timer_.cancel();
    grace_timer_.cancel();
    shut_down_then_stop(lock_, io_, opts_, log_);
  }

  asio::io_context& io_;
  const parsed_arguments& args_;
  logger log_;
  options opts_;
  hold_plan plan_;
  contender lock_;
  event_subscription events_;
  asio::signal_set signals_;  // before the child exists: its SIGCHLD must not be lost
  asio::steady_timer timeout_timer_;
  asio::steady_timer grace_timer_;
  std::optional<child_process> child_;
  phase phase_ = phase::waiting;
  int lost_code_ = 0;
  bool grace_started_ = false;
  error_code last_etcd_error_;
  etcd_trouble trouble_;
  leaseless_notice leaseless_;
  int exit_code_ = exit_code::internal_error;
};

}  // namespace

int supervise(const parsed_arguments& args, options opts, hold_plan plan) {
  asio::io_context io;
  run_supervisor supervisor(io, args, std::move(opts), std::move(plan));
  return supervisor.run();
}

std::optional<int> find_command(const parsed_arguments& args, hold_plan& plan) {
  auto resolved = resolve_command(args.run.command);
  if (auto* problem = std::get_if<command_problem>(&resolved)) {
    logger(false).error(problem->message);
    return problem->exit_code;
  }
  plan.command = std::get<resolved_command>(std::move(resolved));
  return std::nullopt;
}

int run_command(const parsed_arguments& args) {
  hold_plan plan;
  if (auto failed = find_command(args, plan)) return *failed;
  auto opts = make_options(args.common, args.name, true);
  opts.watch = args.run.watch;
  return supervise(args, std::move(opts), std::move(plan));
}

}  // namespace clusterlock::cli
