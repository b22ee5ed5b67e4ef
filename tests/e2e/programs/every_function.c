// Every interposed allocation function, each called from its own function, each leaving a
// known number of live blocks of a known size. Also realloc's edge cases.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))
#define KEEP(p) __asm__ volatile("" ::"r"(p) : "memory")

static void* kept[256];
static int kept_count;
static void keep(void* p) { kept[kept_count++] = p; }

NOINLINE void use_malloc(void) {
  for (int i = 0; i < 3; ++i) {
    void* p = malloc(100);
    KEEP(p);
    keep(p);
  }
}
NOINLINE void use_calloc(void) {
  for (int i = 0; i < 4; ++i) {
    void* p = calloc(10, 20);
    KEEP(p);
    keep(p);
  }
}
NOINLINE void use_memalign(void) {
  void* p = memalign(64, 300);
  KEEP(p);
  keep(p);
}
NOINLINE void use_aligned_alloc(void) {
  for (int i = 0; i < 2; ++i) {
    void* p = aligned_alloc(128, 256);
    KEEP(p);
    keep(p);
  }
}
NOINLINE void use_posix_memalign(void) {
  void* p = NULL;
  if (posix_memalign(&p, 32, 500) == 0) keep(p);
  KEEP(p);
}
NOINLINE void use_valloc(void) {
  void* p = valloc(1000);
  KEEP(p);
  keep(p);
}
NOINLINE void use_pvalloc(void) {
  void* p = pvalloc(5000);
  KEEP(p);
  keep(p);
}
NOINLINE void* start_block(void) {
  void* p = malloc(10);
  KEEP(p);
  return p;
}
NOINLINE void use_realloc(void) {
  void* p = start_block();
  p = realloc(p, 700);  // moves or grows: the block now belongs to use_realloc
  KEEP(p);
  keep(p);
}
NOINLINE void use_reallocarray(void) {
  void* p = reallocarray(NULL, 30, 10);
  KEEP(p);
  keep(p);
}
NOINLINE void realloc_to_zero(void) {
  void* p = malloc(123);
  KEEP(p);
  void* r = realloc(p, 0);  // glibc: frees p, returns NULL
  KEEP(r);
  if (r != NULL) free(r);
}
NOINLINE void realloc_failure(void) {
  void* p = malloc(77);
  KEEP(p);
  errno = 0;
  void* r = realloc(p, SIZE_MAX / 2);  // fails, p stays valid and live
  KEEP(r);
  if (r == NULL && errno == ENOMEM) keep(p);
}
NOINLINE void freed_everything(void) {
  void* a = malloc(1);
  void* b = calloc(1, 1);
  void* c = aligned_alloc(64, 64);
  KEEP(a);
  KEEP(b);
  KEEP(c);
  free(a);
  free(b);
  free(c);
}

int main(void) {
  use_malloc();
  use_calloc();
  use_memalign();
  use_aligned_alloc();
  use_posix_memalign();
  use_valloc();
  use_pvalloc();
  use_realloc();
  use_reallocarray();
  realloc_to_zero();
  realloc_failure();
  freed_everything();
  size_t usable = malloc_usable_size(kept[0]);
  printf("every_function done usable>=100:%d kept:%d\n", usable >= 100, kept_count);
  return 0;
}
