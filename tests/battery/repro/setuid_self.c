// Reproducer (battery finding, same family as defect 4; seen on 1d6ec51 and e752519, fixed by
// 7b70b92, which admits the run's processes by SO_PEERCRED and the process tree): a single
// process that drops its privileges early, as memcached -u or any daemon started as root does,
// was never heard from when driftwatch ran as root. The census connection is opened at the first
// census, by which time the process is `nobody` and could not reach the root-owned 0700 socket
// directory; `driftwatch run` then said "no census arrived (static binary, or the shim did not
// load?)" and exited 0. Kept as a regression check; the memcached case asserts it for real.
//
// Usage (as root): setuid_self DELAY_MS SECONDS
//   DELAY_MS  how long to stay root before setuid(65534); SECONDS how long to run afterwards,
//             allocating and freeing
// Build: cc -O2 -o setuid_self setuid_self.c
// Run:   driftwatch run --interval 50 --json v.json -- ./setuid_self 0 1
//        jq '[.processes[].pid] | unique | length' v.json   # 1 expected, 0 seen
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  const struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DELAY_MS SECONDS\n", argv[0]);
    return 2;
  }
  sleep_ms(atol(argv[1]));
  if (setgid(65534) != 0 || setuid(65534) != 0) {
    perror("setuid (run as root)");
    return 1;
  }
  const long rounds = atol(argv[2]) * 100;
  for (long i = 0; i < rounds; ++i) {  // work as nobody: allocations the shim sees
    void* volatile block = malloc(1000 + (size_t)i);
    free(block);
    sleep_ms(10);
  }
  printf("ran as uid %d\n", (int)getuid());
  return 0;
}
