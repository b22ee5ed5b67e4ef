// A vfork child runs on its parent's memory until it execs. What it does there must not be
// recorded in the parent's tables: its allocation at child_alloc is not the parent's leak.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE void* child_alloc(void) {
  void* p = malloc(100);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

NOINLINE void* parent_alloc(void) {
  void* p = malloc(300);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

int main(void) {
  void* kept = parent_alloc();
  for (int i = 0; i < 3; ++i) {
    pid_t pid = vfork();
    if (pid == 0) {
      child_alloc();
      execl("/bin/true", "true", (char*)NULL);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  void* after = parent_alloc();  // the parent's hooks work again after vfork returns
  printf("vfork_child done %d\n", kept != NULL && after != NULL);
  return 0;
}
