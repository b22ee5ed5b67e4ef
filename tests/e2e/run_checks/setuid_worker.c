/* setuid_worker.c: the master/worker shape of a daemon started as root. The master forks a
 * worker that switches to uid/gid 65534 (nobody) and then leaks 4 KiB per request in
 * worker_leak(); the master only waits. `driftwatch run` must hear from both processes and find
 * the worker's leak. Usage: setuid_worker [REQUESTS] (default 60, one per 50 ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* volatile g_sink;

__attribute__((noinline)) static void worker_leak(void) {
  char* block = malloc(4096);
  memset(block, 7, 4096);
  g_sink = block;
}

static int worker(int requests) {
  if (setgid(65534) != 0 || setuid(65534) != 0) {
    perror("setuid_worker: dropping privileges");
    return 2;
  }
  for (int i = 0; i < requests; ++i) {
    worker_leak();
    usleep(50 * 1000);
  }
  return 0;
}

int main(int argc, char** argv) {
  const int requests = argc > 1 ? atoi(argv[1]) : 60;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) exit(worker(requests));
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 1;
  printf("setuid_worker: worker exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
