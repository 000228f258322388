// Clock faults: a contender whose clocks lie, by libfaketime (Debian's libfaketime package) in its LD_PRELOAD.
//
// What libfaketime 0.9.10 changes, measured here with an Asio steady_timer under it: CLOCK_MONOTONIC (what
// std::chrono::steady_clock reads, so every lease and timeout of the library) is faked like CLOCK_REALTIME
// (FAKETIME_DONT_FAKE_MONOTONIC unset or 0; we set 0 to say so); it also hooks timerfd_settime, epoll_wait and
// ppoll, and either way Asio re-arms until its faked clock reaches a timer's expiry, so the process's timers keep
// the faked clock: under "x0.5" a 1 s steady_timer takes 2 s of real time, under "x2" 0.5 s; after the clock jumps
// back by N s every pending timer fires N s late (keepalives included). Sockets are not slowed: etcd's answers and
// watch events arrive in real time. A raw clock_gettime syscall is not intercepted (the contender logs with it).
#pragma once

#include "chaos/chaos_records.hpp"

#include <string>
#include <vector>

namespace clusterlock::chaos {

/// The installed libfaketimeMT.so.1 (the thread-safe one), or "" when there is none.
std::string find_libfaketime();

/// The environment entries that start a contender with `kind`'s lying clock (they replace the harness's own entries
/// of the same names): rate faults from its first moment
/// (FAKETIME "+0 x0.5" or "+0 x2"); a jump reads `timestamp_file` ("+0" now) at every clock call, so that
/// set_clock_offset() can move it later.
std::vector<std::string> faketime_env(fault_kind kind, const std::string& library, const std::string& timestamp_file);

/// Rewrites a jump contender's FAKETIME_TIMESTAMP_FILE: its clocks read `offset_s` seconds from true time from
/// the next call on. Throws std::runtime_error when the file cannot be written.
void set_clock_offset(const std::string& timestamp_file, double offset_s);

/// A word for faults.txt: "x0.5", "x2", "jump".
std::string clock_label(fault_kind kind);

}  // namespace clusterlock::chaos
