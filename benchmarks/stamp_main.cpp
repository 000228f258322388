// The command the command hand-off benchmark runs under `clusterlock run` and `etcdctl lock`: it appends
// "LABEL start NS" to FILE as soon as it runs, waits until GO_FILE exists (if given), then appends "LABEL end NS"
// and exits. NS is CLOCK_MONOTONIC in nanoseconds, comparable across processes. No C++ runtime work to speak of:
// its own start-up adds as little as possible to what is measured.
//
//   clusterlock_bench_stamp FILE LABEL [GO_FILE]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace {

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

bool append(const char* file, const char* label, const char* what) {
  char line[256];
  const int n = std::snprintf(line, sizeof line, "%s %s %lld\n", label, what, now_ns());
  const int fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, line, static_cast<size_t>(n)) == n;  // one write: lines never interleave
  ::close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: clusterlock_bench_stamp FILE LABEL [GO_FILE]\n");
    return 2;
  }
  if (!append(argv[1], argv[2], "start")) return 1;
  if (argc > 3) {
    // Polling costs nothing that is measured: the hand-off starts at the "end" stamp written after it.
    const timespec pause{0, 1000000};  // 1 ms
    while (::access(argv[3], F_OK) != 0) ::nanosleep(&pause, nullptr);
  }
  return append(argv[1], argv[2], "end") ? 0 : 1;
}
