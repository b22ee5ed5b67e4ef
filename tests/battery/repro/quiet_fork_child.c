// Reproducer (battery finding, seen on 1d6ec51, e752519 and 812dc14; fixed by 96350c1, which
// reports a quiet child from an _exit hook; kept as a regression check): a fork child that lives
// many census intervals but calls no hooked function after its first interval, and leaves with
// _exit, is never heard from: `driftwatch run` reports one process where there were 1 + N. A fork
// child's census thread is started from a hook (StartIfDue: the first allocation or fd event one
// interval after the fork); a child blocked in a system call calls none, and a child whose thread
// never started sends no final census either. Since 7b70b92 such a child is listed under "not
// heard from" (verdict inconclusive, exit 4) only when it lived at least 2 intervals + 1 s; a
// child of 1 s at --interval 50 (20 intervals) is neither heard from nor listed. Python's
// multiprocessing pool workers (block on a pipe, leave with os._exit) hit this.
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
