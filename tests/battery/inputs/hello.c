/* A small C program: compiled by the gcc case, then run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void* a, const void* b) { return *(const int*)a - *(const int*)b; }

int main(void) {
  enum { kCount = 100000 };
  int* values = malloc(kCount * sizeof *values);
  unsigned state = 12345;
  for (int i = 0; i < kCount; ++i) values[i] = (int)((state = state * 1103515245u + 12345u) >> 8);
  qsort(values, kCount, sizeof *values, compare);
  long long sum = 0;
  for (int i = 0; i < kCount; i += 1000) sum += values[i];
  printf("min %d max %d sampled sum %lld\n", values[0], values[kCount - 1], sum);
  free(values);
  return strlen("seven!!") == 7 ? 7 : 0;
}
