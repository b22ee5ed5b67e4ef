// Reproducer (battery finding, seen on 1d6ec51; fixed by b040599, which gives the census thread
// its own fd table; kept as a regression check, and python3_fds asserts it on a real program):
// a program that closes every descriptor above 2, as daemons and Python's subprocess
// (close_fds) do, got a line from the shim in its own stderr:
//   driftwatch[PID]: the census socket was closed or replaced by the program; reconnecting
// so its output differed from the bare run's; the shim reconnected, and the verdict listed the
// process twice (same pid, two connections).
//
// Usage: close_all_fds loop|range MS
//   first runs for 200 ms (so the shim has connected), then closes every fd above 2:
//   loop   closes fds 3 .. sysconf(_SC_OPEN_MAX)-1 one by one (Python's os.closerange)
//   range  close_range(3, ~0U, 0) (closefrom, systemd, recent daemons)
//   then allocates for MS milliseconds more; prints nothing on stderr bare
// Build: cc -O2 -o close_all_fds close_all_fds.c
// Run:   driftwatch run --interval 50 -- ./close_all_fds loop 500 2> err; cat err   # one line
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const struct timespec settle = {0, 200 * 1000000L};
  nanosleep(&settle, NULL);
  if (strcmp(argv[1], "range") == 0) {
    if (close_range(3, ~0U, 0) != 0) return 1;
  } else {
    for (long fd = 3; fd < sysconf(_SC_OPEN_MAX); ++fd) close((int)fd);
  }
  const long rounds = atol(argv[2]);
  const struct timespec ms = {0, 1000000L};
  for (long i = 0; i < rounds; ++i) {
    void* volatile block = malloc(64 + (size_t)i % 512);
    free(block);
    nanosleep(&ms, NULL);
  }
  return 0;
}
