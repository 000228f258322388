#pragma once
// Which keys a contender waits for: the one rule lock_machine::oldest() applies, for the four recipes on its
// machinery. A key is admitted while fewer than limit() other keys as old as it or older block it (a key of the same
// create revision counts as older: the pessimistic reading).
//   lock       every older key blocks, limit 1: the oldest key holds (etcd's recipe).
//   semaphore  every older key blocks, limit N (slots): the first N keys hold.
//   write      as the lock: a writer waits for every older key, readers' and writers' alike.
//   read       only writers block (any value but `rw=read;...`, rw_value.hpp), limit 1: readers ahead of the first
//              writer hold together; a reader behind a waiting writer waits for it (FIFO: writers are not starved).

#include <cstddef>

namespace clusterlock::recipe {

struct admission {
  enum class kind_type : unsigned char { lock, semaphore, read, write };
  kind_type kind = kind_type::lock;
  std::size_t slots = 0;  // a semaphore's N; 0 otherwise

  static constexpr admission lock() noexcept { return {}; }
  static constexpr admission semaphore(std::size_t n) noexcept { return {kind_type::semaphore, n}; }
  static constexpr admission reader() noexcept { return {kind_type::read, 0}; }
  static constexpr admission writer() noexcept { return {kind_type::write, 0}; }

  /// How many blocking keys as old or older still leave us out.
  constexpr std::size_t limit() const noexcept { return kind == kind_type::semaphore ? slots : 1; }
  /// Values carry a prefix (slots=N; or rw=...;) that is not part of the identity.
  constexpr bool rw() const noexcept { return kind == kind_type::read || kind == kind_type::write; }
  /// One holder at a time, whom observers are told of (HOLDER_CHANGED): the plain lock only.
  constexpr bool announces_holder() const noexcept { return kind == kind_type::lock; }
  bool operator==(const admission&) const = default;
};

}  // namespace clusterlock::recipe
