// churn: small-object churn like a bignum library, for bench/overhead.
//
// Keeps a pool of 256 small unsigned bignums (arrays of 32-bit limbs, 1-24 limbs: 4-96 bytes, a
// few larger) and repeatedly combines two of them into a fresh result, the way a bignum library
// does: every result is a new malloc, the operand it replaces is freed, multiplication takes a
// scratch buffer that is freed at once, and a result is trimmed or grown in place with realloc.
// One step is about 3 allocation calls, so the default 12 M steps make ~35 M allocation calls
// (malloc, calloc, realloc) and as many frees.
// Single-threaded; prints a checksum of the numbers, which no heap tracker may change.
//
// Usage: bench_churn [--scale X]   (X multiplies the steps; default 1: ~1.1 s of CPU bare)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_scale.h"

typedef struct {
  uint32_t n;      // limbs in use
  uint32_t* limb;  // little-endian, malloc'ed (the object is malloc'ed too)
} Big;

enum { kPool = 256, kMaxLimbs = 24 };

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t Next(void) {  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static void* Xmalloc(size_t n) {
  void* p = malloc(n);
  if (!p) abort();
  return p;
}

static Big* NewBig(uint32_t limbs) {
  Big* b = Xmalloc(sizeof(Big));
  b->n = limbs;
  b->limb = Xmalloc(limbs * sizeof(uint32_t));
  return b;
}

static void FreeBig(Big* b) {
  free(b->limb);
  free(b);
}

// A result's size cap (results are taken modulo 2^(32*cap)), so that sizes stay mixed and mostly
// small: 75 % 1-4 limbs, 20 % 5-12, 5 % 13-24.
static uint32_t PickCap(void) {
  uint64_t r = Next() % 100;
  if (r < 75) return 1 + (uint32_t)(Next() % 4);
  if (r < 95) return 5 + (uint32_t)(Next() % 8);
  return 13 + (uint32_t)(Next() % 12);
}

// Drops leading zero limbs (at least one limb stays) and limbs above the cap, shrinking the
// array with realloc the way a library trims a result.
static void Normalize(Big* b) {
  uint32_t n = b->n;
  uint32_t cap = PickCap();
  if (n > cap) n = cap;
  while (n > 1 && b->limb[n - 1] == 0) n--;
  if (n != b->n) {
    uint32_t* p = realloc(b->limb, n * sizeof(uint32_t));
    if (!p) abort();
    b->limb = p;
    b->n = n;
  }
}

static Big* Add(const Big* a, const Big* b) {
  uint32_t n = (a->n > b->n ? a->n : b->n) + 1;
  Big* r = NewBig(n);
  uint64_t carry = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t s = carry + (i < a->n ? a->limb[i] : 0) + (i < b->n ? b->limb[i] : 0);
    r->limb[i] = (uint32_t)s;
    carry = s >> 32;
  }
  Normalize(r);
  return r;
}

// Schoolbook product into a scratch buffer (malloc'ed and freed, as in a library's temporary
// space), copied into a result of the truncated size.
static Big* Mul(const Big* a, const Big* b) {
  uint32_t n = a->n + b->n;
  uint32_t* scratch = calloc(n, sizeof(uint32_t));
  if (!scratch) abort();
  for (uint32_t i = 0; i < a->n; i++) {
    uint64_t carry = 0;
    for (uint32_t j = 0; j < b->n; j++) {
      uint64_t t = (uint64_t)a->limb[i] * b->limb[j] + scratch[i + j] + carry;
      scratch[i + j] = (uint32_t)t;
      carry = t >> 32;
    }
    scratch[i + b->n] = (uint32_t)carry;
  }
  uint32_t keep = n > kMaxLimbs ? kMaxLimbs : n;
  Big* r = NewBig(keep);
  memcpy(r->limb, scratch, keep * sizeof(uint32_t));
  free(scratch);
  Normalize(r);
  return r;
}

// Grows a number by one random limb with realloc (a carry out of the top, or a shift).
static void Grow(Big* b) {
  if (b->n >= kMaxLimbs) return;
  uint32_t* p = realloc(b->limb, (b->n + 1) * sizeof(uint32_t));
  if (!p) abort();
  b->limb = p;
  b->limb[b->n++] = (uint32_t)Next() | 1u;
}

// A number printed to a string and parsed back, as programs that format their results do:
// an allocation of a size unlike the limb arrays.
static uint64_t FormatHash(const Big* b) {
  char* text = Xmalloc(b->n * 9 + 1);
  char* p = text;
  for (uint32_t i = b->n; i-- > 0;) p += sprintf(p, "%08x", b->limb[i]);
  uint64_t h = 1469598103934665603ull;
  for (char* c = text; c < p; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
  free(text);
  return h;
}

int main(int argc, char** argv) {
  const double scale = ParseScale(argc, argv);
  const uint64_t steps = (uint64_t)(12e6 * scale);
  Big* pool[kPool];
  for (int i = 0; i < kPool; i++) {
    pool[i] = NewBig(1 + (uint32_t)(Next() % 4));
    for (uint32_t j = 0; j < pool[i]->n; j++) pool[i]->limb[j] = (uint32_t)Next() | 1u;
  }
  uint64_t check = 0;
  for (uint64_t s = 0; s < steps; s++) {
    uint64_t r = Next();
    Big* a = pool[r % kPool];
    Big* b = pool[(r >> 8) % kPool];
    int dst = (int)((r >> 16) % kPool);
    Big* out = ((r >> 24) % 4 == 0) ? Mul(a, b) : Add(a, b);
    if ((r >> 28) % 8 == 0) Grow(out);
    if ((r >> 32) % 64 == 0) check ^= FormatHash(out);
    check = check * 31 + out->limb[0] + out->n;
    FreeBig(pool[dst]);
    pool[dst] = out;
  }
  for (int i = 0; i < kPool; i++) {
    check ^= FormatHash(pool[i]);
    FreeBig(pool[i]);
  }
  printf("churn: steps=%llu checksum=%016llx\n", (unsigned long long)steps,
         (unsigned long long)check);
  return 0;
}
