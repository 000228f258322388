#pragma once
// The checks of the lock-machine fuzzer (lock_machine_fuzzer.cpp, the only file that includes this): tracing, the
// event grammar and the view's invariants (checker), and what each admission rule allows (breaks_rule,
// probe_targets), for the lock, the semaphore and the read-write lock. The invariants are listed in
// lock_machine_fuzzer.cpp's header comment.

#include "recipe/admission.hpp"
#include "recipe/lock_machine.hpp"
#include "recipe/rw_value.hpp"
#include "recipe/slots_value.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using clusterlock::lock_event;
using clusterlock::recipe::admission;
using clusterlock::recipe::decode_rw;
using clusterlock::recipe::decode_slots;
using clusterlock::recipe::encode_rw;
using clusterlock::recipe::encode_slots;
using clusterlock::recipe::lock_machine;
using clusterlock::recipe::queue_entry;
using status = lock_machine::status;

// The operations of a run, printed when an invariant breaks. Recorded only when `tracing`: a broken run is run
// again with it on (most of the time goes to building these strings otherwise).
bool tracing = false;
std::vector<std::string> trace;
struct run_again_with_trace {};
#define TRACE(...)                                \
  do {                                            \
    if (tracing) trace.push_back(__VA_ARGS__);    \
  } while (0)

[[noreturn]] void fail(const std::string& what) {
  if (!tracing) throw run_again_with_trace{};
  std::fprintf(stderr, "invariant broken: %s\noperations:\n", what.c_str());
  for (const auto& t : trace) std::fprintf(stderr, "  %s\n", t.c_str());
  std::abort();
}
// A macro: the message is built only when the check fails.
#define require(holds, ...)        \
  do {                             \
    if (!(holds)) fail(__VA_ARGS__); \
  } while (0)

std::string describe(const std::vector<queue_entry>& keys) {
  std::string s = "[";
  for (const auto& e : keys) s += " " + e.key + "@" + std::to_string(e.create_revision);
  return s + " ]";
}

// ---- What each rule allows ------------------------------------------------------------------------------------

// Our own key's value under `rule`.
std::string our_value(const admission& rule) {
  switch (rule.kind) {
    case admission::kind_type::semaphore: return encode_slots(rule.slots, "me");
    case admission::kind_type::read: return encode_rw(true, "me");
    case admission::kind_type::write: return encode_rw(false, "me");
    case admission::kind_type::lock: break;
  }
  return "me";
}

// Whether a key with `value`, as old as ours or older, counts against us (a reader: only a writer's, which is any
// value but `rw=read;...`).
bool blocks(const admission& rule, const std::string& value) {
  return rule.kind != admission::kind_type::read || !decode_rw(value).reader;
}

// Why holding with our key at `token` beside `others` (create revision, value) breaks `rule`; empty: it does not.
// Written from the rule's statement, not from the machine's code: fewer than limit() blocking keys as old as ours
// or older, and for a semaphore all of those with our N.
std::string breaks_rule(const admission& rule, std::int64_t token,
                        const std::vector<std::pair<std::int64_t, std::string>>& others) {
  std::size_t blocking = 0;
  for (const auto& [create, value] : others) {
    if (create > token) continue;
    if (rule.kind == admission::kind_type::semaphore && decode_slots(value).slots != rule.slots)
      return "an older key has another N (" + value + ")";
    if (blocks(rule, value)) ++blocking;
  }
  const std::size_t limit = rule.kind == admission::kind_type::semaphore ? rule.slots : 1;
  if (blocking >= limit) return std::to_string(blocking) + " keys as old or older block us (value rule)";
  return {};
}

// The keys a waiter's probe must read, oldest first: the first min(N, 3) keys ahead (a semaphore), the first key
// (a lock, a writer), the first three writers ahead (a reader).
std::vector<std::string> probe_targets(const admission& rule, std::int64_t token, const std::vector<queue_entry>& q) {
  const std::size_t most = rule.kind == admission::kind_type::semaphore ? std::clamp<std::size_t>(rule.slots, 1, 3)
                           : rule.kind == admission::kind_type::read    ? 3
                                                                        : 1;
  std::vector<std::string> out;
  for (const auto& e : q) {
    if (e.create_revision >= token || out.size() == most) break;
    if (blocks(rule, e.identity)) out.push_back(e.key);
  }
  return out;
}

// ---- Checks that hold in both modes ------------------------------------------------------------------------

struct checker {
  enum class hold { out, holding, uncertain };
  hold state = hold::out;
  std::int64_t hold_token = 0;
  std::int64_t highest_acquired = 0;
  bool strict_tokens = false;  // world mode: (4) and (5) in full
  std::optional<std::int64_t> announced;  // token of the last HOLDER_CHANGED

  void events(lock_machine& m) {
    for (const auto& e : m.take_events()) {
      TRACE(std::string("    -> ") + clusterlock::to_string(e.kind) + " token=" + std::to_string(e.fencing_token) +
                      " holder=" + e.holder + " rev=" + std::to_string(e.revision));
      switch (e.kind) {
        case lock_event::acquired:
          require(state != hold::holding, "ACQUIRED while already holding");
          if (state == hold::uncertain) {
            require(e.fencing_token == hold_token, "ACQUIRED after UNKNOWN with another token");
          } else if (strict_tokens) {
            require(e.fencing_token > highest_acquired, "a fresh ACQUIRED did not raise the token");
          }
          require(e.fencing_token > 0, "ACQUIRED without a token");
          highest_acquired = std::max(highest_acquired, e.fencing_token);
          hold_token = e.fencing_token;
          state = hold::holding;
          break;
        case lock_event::unknown:
          require(state == hold::holding, "UNKNOWN while not holding");
          require(e.fencing_token == hold_token, "UNKNOWN with another token than the hold's");
          state = hold::uncertain;
          break;
        case lock_event::removed:
          require(state != hold::out, "REMOVED without a hold");
          require(e.fencing_token == hold_token, "REMOVED with another token than the hold's");
          state = hold::out;
          break;
        case lock_event::holder_changed:
          require(m.rule().announces_holder(), "HOLDER_CHANGED from a semaphore or a read-write lock");  // (5s)
          require(!m.partial_view(), "HOLDER_CHANGED from a partial view");  // (5p)
          // The same token twice: only another key of the same create revision (one txn made both) can be that.
          require(!announced || *announced != e.fencing_token || e.fencing_token != 0, "HOLDER_CHANGED without a change");
          if (strict_tokens && e.fencing_token != 0) {
            require(e.fencing_token >= last_holder_token, "the holder's token went down");
            last_holder_token = e.fencing_token;
          }
          announced = e.fencing_token;
          break;
      }
    }
  }
  std::int64_t last_holder_token = 0;  // of the last HOLDER_CHANGED naming a holder
  std::map<std::pair<std::int64_t, std::string>, queue_entry> copy;  // (9)

  void state_of(lock_machine& m) {
    // (1)
    const auto q = m.queue();
    // (9)
    using change = lock_machine::queue_change::kind_type;
    for (auto& c : m.take_queue_changes()) {
      if (c.kind == change::cleared) copy.clear();
      else if (c.kind == change::erased) copy.erase({c.entry.create_revision, c.entry.key});
      else copy.insert_or_assign({c.entry.create_revision, c.entry.key}, c.entry);
    }
    require(copy.size() == q.size(), "the queue's changes give another queue " + describe(q));
    std::size_t at = 0;
    for (const auto& [position, e] : copy) {
      const auto& t = q[at++];
      require(e.key == t.key && e.create_revision == t.create_revision && e.identity == t.identity &&
                  e.lease == t.lease,
              "the queue's changes give another queue " + describe(q));
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < q.size(); ++i) {
      require(names.insert(q[i].key).second, "a key is twice in the view " + describe(q));
      if (i > 0) require(q[i - 1].create_revision <= q[i].create_revision, "the view is out of order " + describe(q));
    }
    const auto h = m.holder();
    require(h.has_value() == !q.empty(), "holder() disagrees with queue()");
    if (h) require(h->key == q.front().key && h->create_revision == q.front().create_revision, "holder() is not first");
    // (2s), (2r)
    if (m.current() == status::held && m.rule().kind != admission::kind_type::lock) {
      std::vector<std::pair<std::int64_t, std::string>> others;
      bool mine = false;
      for (const auto& e : q) {
        if (e.key == m.my_key() && e.create_revision == m.my_token()) mine = true;
        else others.emplace_back(e.create_revision, e.identity);
      }
      require(mine, "held, but our key is not in the view " + describe(q));
      const std::string why = breaks_rule(m.rule(), m.my_token(), others);
      require(why.empty(), "held, but " + why + " " + describe(q));
    }
    // (10) A waiter's probe reads the keys its admission waits on, oldest first.
    if (m.current() == status::waiting) {
      const auto ahead = m.keys_ahead();
      const auto expected = probe_targets(m.rule(), m.my_token(), q);
      require(ahead == expected, "keys_ahead() is not the first keys that block us " + describe(q));
    } else {
      require(m.keys_ahead().empty(), "keys_ahead() while not waiting");
    }
    // (2)
    if (m.current() == status::held && m.rule().kind == admission::kind_type::lock) {
      require(m.my_token() != 0, "held without a token");
      require(h && h->key == m.my_key() && h->create_revision == m.my_token(),
              "held, but our key is not the oldest in the view " + describe(q) + " mine " + m.my_key() + "@" +
                  std::to_string(m.my_token()));
      for (std::size_t i = 1; i < q.size(); ++i)
        require(q[i].create_revision > m.my_token(), "held, with another key as old as ours " + describe(q));
    }
    // (3): the grammar's state is the machine's.
    const hold expected = m.current() == status::held        ? hold::holding
                          : m.current() == status::uncertain ? hold::uncertain
                                                             : hold::out;
    require(state == expected, "the events say otherwise than status()");
    if (state != hold::out) require(m.my_token() == hold_token, "the token changed during a hold");
    // (5)
    if (announced) {
      const std::int64_t holder_token = h ? h->create_revision : 0;
      require(*announced == holder_token, "the last HOLDER_CHANGED does not name the view's holder");
    }
  }
};

}  // namespace
