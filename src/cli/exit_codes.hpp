#pragma once
// The exit codes of the clusterlock command. `run` otherwise passes on its COMMAND's own status, so ours sit high
// (next to timeout(1)'s 124-127) where few programs put theirs; the message on stderr always says which it was.

namespace clusterlock::cli::exit_code {

inline constexpr int success = 0;
inline constexpr int etcd_failed = 1;  ///< etcd unreachable, or it refused us (auth, TLS, permissions)
inline constexpr int usage = 2;        ///< bad command line or options
inline constexpr int lock_removed = 122;     ///< run, elect: the lock was lost (REMOVED) while held
inline constexpr int lock_unknown = 123;     ///< run, elect: the lock could no longer be proven (UNKNOWN) while held
/// put/del --fenced: the lock is no longer ours (its key is gone or has another create revision), so etcd wrote
/// nothing. The same number as lock_removed: both say "the lock is no longer ours".
inline constexpr int not_ours = 122;
inline constexpr int timed_out = 124;        ///< run, elect: --timeout passed before the lock was acquired
inline constexpr int internal_error = 125;   ///< run: clusterlock itself failed (fork, ...)
inline constexpr int cannot_execute = 126;   ///< run: COMMAND was found but cannot be executed
inline constexpr int command_not_found = 127;  ///< run: COMMAND was not found
/// A signal ended clusterlock's wait (run and elect, before COMMAND started): 128 + the signal, as shells report it.
inline constexpr int signal_base = 128;

}  // namespace clusterlock::cli::exit_code
