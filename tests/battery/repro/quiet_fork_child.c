// Reproducer (battery finding, seen on 1d6ec51 and e752519): a fork child that lives many census
// intervals but makes no allocation after its first interval is never heard from, so `driftwatch
// run` reports one process where there were 1 + N. Python's multiprocessing workers (which block on
// a pipe and leave with os._exit) hit this. The census thread of a fork child is started from a
// hook (the first allocation one interval after the fork); a child blocked in a system call never
// calls one, and a child whose thread never started sends no final census either.
//
// Usage: quiet_fork_child CHILDREN SECONDS [exit|_exit]
// Build: cc -O2 -o quiet_fork_child quiet_fork_child.c
// Run:   driftwatch run --interval 50 --json v.json -- ./quiet_fork_child 3 1 _exit
//        jq '[.processes[].pid] | unique | length' v.json   # 4 expected, 1 seen
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CHILDREN SECONDS exit|_exit\n", argv[0]);
    return 2;
  }
  const int children = atoi(argv[1]);
  const double seconds = atof(argv[2]);
  const int use_exit = strcmp(argv[3], "exit") == 0;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      char* volatile block = malloc(100);  // one allocation, at once: too early to start
      block[0] = 1;
      const struct timespec pause = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
      nanosleep(&pause, NULL);  // blocked like a worker waiting for work: no hook is called
      if (use_exit) exit(0);
      _exit(0);
    }
  }
  int failed = 0;
  for (int i = 0; i < children; ++i) {
    int status = 0;
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  printf("%d children done\n", children);
  return failed;
}
