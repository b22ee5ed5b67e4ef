// A deterministic allocation workload whose output depends on what the allocator returns:
// contents, errno after failures, usable sizes, alignment. Run with and without the shim, its
// stdout and exit code must be byte-identical.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 88172645463325252ull;
static uint64_t next_random(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 1000000;
  enum { kSlots = 4096 };
  static unsigned char* slots[kSlots];
  static size_t sizes[kSlots];
  uint64_t checksum = 0;
  for (int i = 0; i < rounds; ++i) {
    size_t slot = next_random() % kSlots;
    size_t size = next_random() % 2048;
    size_t preserved = 0;  // bytes whose content the allocator must keep (realloc only)
    switch (next_random() % 4) {
      case 0:
        free(slots[slot]);
        slots[slot] = malloc(size);
        break;
      case 1:
        free(slots[slot]);
        slots[slot] = calloc(1, size);
        for (size_t b = 0; b < size; ++b) checksum += slots[slot][b];  // must be zero
        break;
      case 2: {
        unsigned char* moved = realloc(slots[slot], size);
        if (moved != NULL || size == 0) slots[slot] = moved;
        if (moved != NULL) preserved = sizes[slot] < size ? sizes[slot] : size;
        break;
      }
      default:
        free(slots[slot]);
        slots[slot] = aligned_alloc(64, (size + 63) & ~(size_t)63);
        checksum += ((uintptr_t)slots[slot] % 64);  // must be zero
        break;
    }
    if (slots[slot] == NULL) {
      sizes[slot] = 0;
      continue;
    }
    for (size_t b = 0; b < preserved; ++b) checksum = checksum * 31 + slots[slot][b];
    memset(slots[slot], (int)(i & 0xff), size);
    sizes[slot] = size;
    checksum += malloc_usable_size(slots[slot]) >= size;
  }
  errno = 0;
  void* huge = malloc(SIZE_MAX / 2);
  printf("huge=%p errno=%d\n", huge, errno);
  errno = 0;
  void* p = malloc(10);
  void* failed = realloc(p, SIZE_MAX / 2);
  printf("failed=%p errno=%d\n", failed, errno);
  free(failed != NULL ? failed : p);  // a failed realloc leaves p valid
  printf("checksum=%llu\n", (unsigned long long)checksum);
  fprintf(stderr, "stderr line\n");
  return 7;  // a distinctive exit code, forwarded unchanged
}
