// Steady: decelerating growth towards a plateau. A slab allocator maps a new 64 KB slab
// whenever its free lists run dry; demand saturates, so growth slows and then stops (the shape
// of arenas and caches warming up in the first minute of a service).
// Expect: steady (at most warming).
#include <stdlib.h>

#include "corpus_service.h"

enum { kSlabBytes = 64 * 1024, kMaxSlabs = 256 };
static void* slabs[kMaxSlabs];
static int slab_count;
static double capacity_needed = 1.0;

CORPUS_NOINLINE static void grow_slab(void) {
  if (slab_count < kMaxSlabs) {
    slabs[slab_count] = malloc(kSlabBytes);
    CORPUS_KEEP(slabs[slab_count]);
    ++slab_count;
  }
}

static void handle(uint64_t request) {
  // Demand approaches 40 slabs: 40 * (1 - e^(-t/4s)) at 100 requests/s.
  capacity_needed += (40.0 - capacity_needed) / 400.0;
  while (slab_count < (int)capacity_needed) grow_slab();
  (void)request;
}

int main(void) { return corpus_serve(100, handle); }
