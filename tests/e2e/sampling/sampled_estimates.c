// Known truths for sampled mode: what each function leaves live is fixed, so the collector's
// estimates can be checked against it.
//   leak_small   keeps 200000 blocks of 64 bytes (12.8 MB): many small samples
//   leak_large   keeps 40 blocks of 1 MiB: each is sampled for certain at a 64 KiB mean
//   churn        allocates and frees 1000000 blocks of 100-355 bytes: nothing stays live
//   handoff      100000 blocks of 128 bytes freed by another thread: nothing stays live
//   keep_fds     opens 7 descriptors and keeps them: fds are exact in every mode
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static void* kept_small[200000];
static void* kept_large[40];
static void* handed[100000];

NOINLINE void* leak_small(void) { return malloc(64); }
NOINLINE void* leak_large(void) { return malloc(1 << 20); }

NOINLINE void churn(void) {
  for (int i = 0; i < 1000000; ++i) {
    void* block = malloc(100 + ((size_t)i * 7919) % 256);
    __asm__ volatile("" ::"r"(block) : "memory");
    free(block);
  }
}

NOINLINE void* handoff(void) { return malloc(128); }

static void* free_handed(void* argument) {
  for (int i = 0; i < 100000; ++i) free(handed[i]);
  return argument;
}

NOINLINE void keep_fds(void) {
  for (int i = 0; i < 7; ++i) {
    if (open("/dev/null", O_RDONLY) < 0) exit(3);
  }
}

int main(void) {
  for (int i = 0; i < 200000; ++i) kept_small[i] = leak_small();
  for (int i = 0; i < 40; ++i) kept_large[i] = leak_large();
  churn();
  for (int i = 0; i < 100000; ++i) handed[i] = handoff();
  pthread_t thread;
  if (pthread_create(&thread, NULL, free_handed, NULL) != 0) return 2;
  pthread_join(thread, NULL);
  keep_fds();
  __asm__ volatile("" ::"r"(kept_small), "r"(kept_large) : "memory");
  puts("sampled_estimates done");
  return 0;
}
