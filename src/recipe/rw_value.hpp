#pragma once
// A read-write lock's key value: `rw=read;<identity>` or `rw=write;<identity>`. Only the exact `rw=read;` prefix
// makes a reader: every other value (`rw=write;...`, a plain lock's identity, `etcdctl lock`'s empty value, a
// semaphore's `slots=N;...`) is a writer's, which is the safe reading: a writer waits for every older key, and every
// key waits for it.

#include <string>
#include <string_view>

namespace clusterlock::recipe {

inline constexpr std::string_view rw_read_prefix = "rw=read;";
inline constexpr std::string_view rw_write_prefix = "rw=write;";

inline std::string encode_rw(bool reader, std::string_view identity) {
  std::string out(reader ? rw_read_prefix : rw_write_prefix);
  out += identity;
  return out;
}

struct rw_value {
  bool reader = false;        // only `rw=read;...`
  std::string_view identity;  // the value without an `rw=...;` prefix (a foreign value whole)
};

inline rw_value decode_rw(std::string_view value) {
  if (value.starts_with(rw_read_prefix)) return {true, value.substr(rw_read_prefix.size())};
  if (value.starts_with(rw_write_prefix)) return {false, value.substr(rw_write_prefix.size())};
  return {false, value};
}

}  // namespace clusterlock::recipe
