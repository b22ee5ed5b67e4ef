// many_stacks: a program with a chosen number of distinct allocation stacks (100k and more),
// the shape of a recursive parser: the path of a recursive descent depends on the data, and
// the leaves allocate. Used to check that censuses scale with what changes, not with what
// exists (issue 10).
//
// usage: many_stacks STACKS SECONDS [DEAD_AFTER_S]
//   STACKS distinct call paths (at most 4^9 = 262144); each is walked about once per round, a
//   round every 200 ms, for SECONDS seconds. Every walk frees the block its path allocated last
//   time and allocates a new one, so each path's site changes in every census while its live
//   memory stays one block. One path in 64 also keeps a block per walk, from Remember (a slow
//   leak: one allocation site with ~2300 stacks), so the verdict has something to find. With
//   DEAD_AFTER_S, after that many seconds the upper half of the paths frees its blocks and is
//   never walked again (sites that go quiet with nothing live), while the lower half goes on.
// Prints "stacks N" first and "rounds N" at the end.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LEVELS 9
#define MAX_PATHS (1u << (2 * LEVELS))

static void** g_blocks;  // the block each path allocated last
static void** g_kept;    // leaked blocks, so the compiler cannot drop the allocations
static size_t g_kept_count;
static size_t g_kept_capacity;

// Each level picks one of four call sites from two bits of the path: each site is its own
// return address, so the path is the stack (11 frames deep in all, within the default depth of
// 16). noinline keeps every frame.
static __attribute__((noinline)) void* Leaf(uint32_t path) {
  void* block = malloc(16 + (path & 63));
  if (block != NULL) *(volatile char*)block = (char)path;
  return block;
}

// The leak: its own function, so that its stacks group apart from the churn (one allocation
// site with many callers).
static __attribute__((noinline)) void* Remember(uint32_t path) {
  void* block = malloc(24);
  if (block != NULL) *(volatile uint32_t*)block = path;
  return block;
}

// One frame per level: the four recursive calls are four return addresses, and the distinct
// work after each keeps the compiler from merging them into one call.
static __attribute__((noinline)) void* Descend(uint32_t path, int level, int keep) {
  if (level == LEVELS) return keep ? Remember(path) : Leaf(path);
  void* result = NULL;
  switch ((path >> (2 * level)) & 3u) {
    case 0:
      result = Descend(path, level + 1, keep);
      __asm__ volatile("nop" ::: "memory");
      break;
    case 1:
      result = Descend(path, level + 1, keep);
      __asm__ volatile("nop; nop" ::: "memory");
      break;
    case 2:
      result = Descend(path, level + 1, keep);
      __asm__ volatile("nop; nop; nop" ::: "memory");
      break;
    default:
      result = Descend(path, level + 1, keep);
      __asm__ volatile("nop; nop; nop; nop" ::: "memory");
      break;
  }
  return result;
}

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void Keep(void* block) {
  if (g_kept_count == g_kept_capacity) {
    g_kept_capacity = g_kept_capacity ? 2 * g_kept_capacity : 1024;
    void** grown = realloc(g_kept, g_kept_capacity * sizeof(void*));
    if (grown == NULL) abort();
    g_kept = grown;
  }
  g_kept[g_kept_count++] = block;
}

static void Walk(uint32_t path) {
  free(g_blocks[path]);
  g_blocks[path] = Descend(path, 0, 0);
  if (path % 64 == 0) Keep(Descend(path, 0, 1));
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: many_stacks STACKS SECONDS [DEAD_AFTER_S]\n");
    return 2;
  }
  uint32_t paths = (uint32_t)strtoul(argv[1], NULL, 10);
  if (paths == 0 || paths > MAX_PATHS) paths = MAX_PATHS;
  const double seconds = atof(argv[2]);
  const double dead_after = argc > 3 ? atof(argv[3]) : -1;
  g_blocks = calloc(MAX_PATHS, sizeof(void*));
  if (g_blocks == NULL) return 1;
  printf("stacks %u\n", paths);
  fflush(stdout);
  // Paths are spread over the whole space (a multiplicative permutation), so that the stacks
  // differ in every level, not only in the innermost ones.
  const double start = Now();
  uint32_t active = paths;
  unsigned rounds = 0;
  while (Now() - start < seconds) {
    if (dead_after >= 0 && active == paths && Now() - start >= dead_after) {
      active = paths / 2;
      for (uint32_t i = active; i < paths; ++i) {
        uint32_t path = (i * 2654435761u) & (MAX_PATHS - 1);
        free(g_blocks[path]);
        g_blocks[path] = NULL;
      }
    }
    for (uint32_t i = 0; i < active; ++i) Walk((i * 2654435761u) & (MAX_PATHS - 1));
    ++rounds;
    const double next = start + rounds * 0.2;
    const double wait = next - Now();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  printf("rounds %u\n", rounds);
  return 0;
}
