// Allocations from four threads at one function: the census must count all of them.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))
enum { kThreads = 4, kPerThread = 2500 };

NOINLINE void* worker_alloc(void) {
  void* p = malloc(32);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

static void* worker(void* argument) {
  void** kept = argument;
  for (int i = 0; i < kPerThread; ++i) kept[i] = worker_alloc();
  for (int i = 0; i < kPerThread; i += 2) free(kept[i]);  // half freed on the same thread
  return NULL;
}

int main(void) {
  static void* kept[kThreads][kPerThread];
  pthread_t threads[kThreads];
  for (int t = 0; t < kThreads; ++t) pthread_create(&threads[t], NULL, worker, kept[t]);
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  // Frees from another thread than the allocating one: 100 more per worker.
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 1; i < 200; i += 2) free(kept[t][i]);
  }
  puts("thread_allocs done");
  return 0;
}
