// Allocations made before main, in a constructor, long before the first census: still counted.
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))
static void* early[20];

NOINLINE void* allocate_in_constructor(void) {
  void* p = malloc(256);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

__attribute__((constructor)) static void setup(void) {
  for (int i = 0; i < 20; ++i) early[i] = allocate_in_constructor();
}

int main(void) {
  puts("early_allocs done");
  return 0;
}
