#pragma once
// A semaphore's key value: `slots=<N>;<identity>`. Every contender writes the number of slots it was given beside
// its identity, so that a contender whose N differs from an older key's can tell, and refuse (errc::slots_mismatch)
// instead of counting by another rule. A value without the prefix (a plain lock's identity, `etcdctl lock`'s empty
// value) decodes as 0 slots: a plain lock, which no semaphore contender agrees with.

#include <cstddef>
#include <string>
#include <string_view>

namespace clusterlock::recipe {

/// The largest number of slots a semaphore may have (options are checked against it).
inline constexpr std::size_t max_slots = 1'000'000;

inline std::string encode_slots(std::size_t slots, std::string_view identity) {
  std::string out = "slots=" + std::to_string(slots) + ";";
  out += identity;
  return out;
}

struct slots_value {
  std::size_t slots = 0;      // 0: no `slots=N;` prefix (a plain lock's key)
  std::string_view identity;  // the value without the prefix
};

/// Strict: `slots=` then 1 to 7 digits without a leading zero, at most max_slots, then `;`. Anything else is a
/// plain value (0 slots, the whole value as identity).
inline slots_value decode_slots(std::string_view value) {
  constexpr std::string_view head = "slots=";
  if (!value.starts_with(head)) return {0, value};
  std::size_t n = 0, i = head.size();
  for (; i < value.size() && i - head.size() < 8 && value[i] >= '0' && value[i] <= '9'; ++i)
    n = n * 10 + static_cast<std::size_t>(value[i] - '0');
  const std::size_t digits = i - head.size();
  if (digits == 0 || digits > 7 || value[head.size()] == '0' || i >= value.size() || value[i] != ';' || n > max_slots)
    return {0, value};
  return {n, value.substr(i + 1)};
}

}  // namespace clusterlock::recipe
