#include <clusterlock/etcd/types.hpp>

namespace clusterlock::etcd {

// As etcd's clientv3 GetPrefixRangeEnd: increment the last byte that is not 0xff and drop what follows it.
// A prefix of only 0xff bytes (or an empty one) has no such end: "\0" then, which etcd reads as "every key
// from `key` on".
std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace clusterlock::etcd
