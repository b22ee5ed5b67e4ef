// A parent with a busy allocating thread forks three children. Each child leaks 50*(n+1)
// blocks of 200 bytes at child_leak, lives a few census intervals, and exits. A fourth child
// must stay single-threaded until it execs: it calls unshare(CLONE_NEWUSER), which fails in a
// multithreaded process, and reports the result in its exit code.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE void* child_leak(void) {
  void* p = malloc(200);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

static void* churn(void* argument) {
  for (int i = 0; i < 300000; ++i) free(malloc(16 + i % 64));
  return argument;
}

int main(void) {
  pthread_t thread;
  pthread_create(&thread, NULL, churn, NULL);
  for (int child = 0; child < 3; ++child) {
    if (fork() == 0) {
      usleep(150 * 1000);  // past the deferred start of the child's census thread
      for (int i = 0; i < 50 * (child + 1); ++i) child_leak();
      usleep(250 * 1000);
      exit(0);
    }
  }
  pid_t single = fork();
  if (single == 0) {
    void* p = malloc(64);  // an allocation right after fork must not start a thread
    __asm__ volatile("" ::"r"(p) : "memory");
    // EINVAL is the multithreaded-process error; EPERM and ENOSPC only mean this machine does
    // not allow user namespaces, which says nothing about the shim.
    _exit(unshare(CLONE_NEWUSER) == 0 || errno != EINVAL ? 0 : 42);
  }
  int failures = 0, status;
  for (pid_t pid; (pid = wait(&status)) > 0;) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("child %d failed with status %d\n", (int)pid, status);
      ++failures;
    }
  }
  pthread_join(thread, NULL);
  puts("fork_children done");
  return failures == 0 ? 0 : 1;
}
