// recursive: recursive code with 100k+ distinct call stacks, allocating at its leaves, for
// bench/overhead (like a recursive logic minimiser, whose stacks follow its data).
//
// Eight mutually recursive functions r0..r7 each pick the next function from bits of a running
// key, so the chain of callers above a leaf is data-dependent: a chain of 5 or 6 functions gives
// 8^5 + 8^6 = 294,912 possible stacks, and the default 3 M descents reach nearly all of them.
// Each leaf allocates a block of 16-271 bytes, writes it, and keeps it in a ring of 8192 live
// blocks (the block it displaces is freed). The program counts the distinct chains it walked and
// prints that count with a checksum, which no heap tracker may change. Single-threaded.
//
// Usage: bench_recursive [--scale X]   (X multiplies the descents; default 1: ~1 s bare)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_scale.h"

#define NOINLINE __attribute__((noinline))

enum { kRing = 8192, kFunctions = 8 };

static unsigned char* ring[kRing];
static uint64_t ring_pos;
// Distinct chains: a chain of d functions f1..fd is numbered (1 << 3d) | f1 f2 ... fd in base 8.
static uint8_t seen[(1u << 21) / 8];
static uint64_t distinct;

static uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Some arithmetic at every level, so that the walk costs more than its calls.
static uint64_t Work(uint64_t key) {
  for (int i = 0; i < 24; i++) key = key * 6364136223846793005ull + 1442695040888963407ull;
  return key;
}

static NOINLINE uint64_t Leaf(uint64_t key, uint32_t chain) {
  if (!(seen[chain / 8] & (1u << (chain % 8)))) {
    seen[chain / 8] |= (uint8_t)(1u << (chain % 8));
    distinct++;
  }
  size_t size = 16 + (key % 256);
  unsigned char* p = malloc(size);
  if (!p) abort();
  memset(p, (int)(key & 0xff), size);
  p[size - 1] = (unsigned char)chain;
  unsigned char** slot = &ring[ring_pos++ % kRing];
  uint64_t h = 0;
  if (*slot) h = (*slot)[0] + (*slot)[1];
  free(*slot);
  *slot = p;
  return h + size;
}

// r0..r7: one level of the descent. The call is not in tail position (its result is combined
// after it returns), so every level keeps its own frame and return address.
#define DECLARE_R(K) static NOINLINE uint64_t r##K(uint64_t key, int depth, uint32_t chain);
DECLARE_R(0)
DECLARE_R(1)
DECLARE_R(2)
DECLARE_R(3)
DECLARE_R(4)
DECLARE_R(5)
DECLARE_R(6)
DECLARE_R(7)

static uint64_t Descend(uint64_t key, int depth, uint32_t chain) {
  uint32_t f = (uint32_t)(key % kFunctions);
  chain = chain * 8 + f;
  switch (f) {
    case 0:
      return r0(key, depth, chain);
    case 1:
      return r1(key, depth, chain);
    case 2:
      return r2(key, depth, chain);
    case 3:
      return r3(key, depth, chain);
    case 4:
      return r4(key, depth, chain);
    case 5:
      return r5(key, depth, chain);
    case 6:
      return r6(key, depth, chain);
    default:
      return r7(key, depth, chain);
  }
}

#define DEFINE_R(K)                                                        \
  static NOINLINE uint64_t r##K(uint64_t key, int depth, uint32_t chain) { \
    uint64_t w = Work(key + K);                                            \
    uint64_t acc;                                                          \
    if (depth == 1) {                                                      \
      acc = Leaf(w, chain);                                                \
    } else {                                                               \
      acc = Descend(Mix(key ^ K), depth - 1, chain);                       \
    }                                                                      \
    return acc * 3 + (w & 0xff) + K;                                       \
  }
DEFINE_R(0)
DEFINE_R(1)
DEFINE_R(2)
DEFINE_R(3)
DEFINE_R(4)
DEFINE_R(5)
DEFINE_R(6)
DEFINE_R(7)

int main(int argc, char** argv) {
  const double scale = ParseScale(argc, argv);
  const uint64_t descents = (uint64_t)(3e6 * scale);
  uint64_t check = 0;
  for (uint64_t i = 0; i < descents; i++) {
    uint64_t key = Mix(i);
    int depth = 5 + (int)((key >> 40) % 2);  // functions in the chain: 5 or 6
    check = check * 31 + Descend(key, depth, 1);
  }
  for (int i = 0; i < kRing; i++) free(ring[i]);
  printf("recursive: descents=%llu distinct_chains=%llu checksum=%016llx\n",
         (unsigned long long)descents, (unsigned long long)distinct, (unsigned long long)check);
  return 0;
}
