// fopen/fclose one million times from one function: nothing may stay live, and every one of the
// million must be counted.
#include <stdio.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE int open_and_close_config(void) {
  FILE* file = fopen("/etc/hostname", "r");
  if (file == NULL) return 1;
  return fclose(file) == 0 ? 0 : 1;
}

int main(void) {
  int failures = 0;
  for (int i = 0; i < 1000000; ++i) failures += open_and_close_config();
  return failures == 0 ? 0 : 1;
}
