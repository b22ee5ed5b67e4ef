// bench_fork_exit: what fork and exit cost a prefork-style program, with many fds and threads
// open as a server has. Forks CHILDREN children one after another, each leaving at once through
// exit() (or _exit() with "_exit"), and prints the mean and the worst microseconds from fork()
// to the parent's waitpid() returning.
// Usage: bench_fork_exit CHILDREN [exit|_exit] [FDS] [THREADS]
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double Now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec + now.tv_nsec / 1e9;
}

static void* Parked(void* unused) {
  (void)unused;
  pause();
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const int children = atoi(argv[1]);
  const int quick = argc > 2 && strcmp(argv[2], "_exit") == 0;
  const int fds = argc > 3 ? atoi(argv[3]) : 0;
  const int threads = argc > 4 ? atoi(argv[4]) : 0;
  for (int i = 0; i < fds; ++i) open("/dev/null", O_RDONLY);
  for (int i = 0; i < threads; ++i) {
    pthread_t thread;
    pthread_create(&thread, NULL, Parked, NULL);
  }
  double total = 0, worst = 0;
  for (int i = 0; i < children; ++i) {
    const double start = Now();
    const pid_t child = fork();
    if (child == 0) {
      if (quick) _exit(0);
      exit(0);
    }
    waitpid(child, NULL, 0);
    const double took = Now() - start;
    total += took;
    if (took > worst) worst = took;
  }
  printf("%.1f %.1f\n", total / children * 1e6, worst * 1e6);
  return 0;
}
