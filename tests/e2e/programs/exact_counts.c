// 1000 allocations of 48 bytes at one function, 400 of them freed; another function churns
// and frees everything. The census must show live=600, live_bytes=28800 at leak_here only.
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE void* leak_here(void) {
  void* block = malloc(48);
  __asm__ volatile("" ::"r"(block) : "memory");
  return block;
}

NOINLINE void churn_and_free(void) {
  for (int i = 0; i < 500; ++i) {
    void* block = malloc(64 + i);
    __asm__ volatile("" ::"r"(block) : "memory");
    free(block);
  }
}

int main(void) {
  static void* kept[1000];
  for (int i = 0; i < 1000; ++i) kept[i] = leak_here();
  churn_and_free();
  for (int i = 0; i < 400; ++i) free(kept[i]);
  puts("exact_counts done");
  return 0;
}
