// bench_scale.h: the one command-line option every benchmark program takes, `--scale X`, which
// multiplies its amount of work (0 < X <= 1000, default 1). Header-only; C and C++.
#ifndef DRIFTWATCH_BENCH_PROGRAMS_BENCH_SCALE_H_
#define DRIFTWATCH_BENCH_PROGRAMS_BENCH_SCALE_H_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Parses argv for --scale. Returns the scale, or exits with 2 and a usage line on bad input.
static inline double ParseScale(int argc, char** argv) {
  double scale = 1.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = strtod(argv[++i], NULL);
    } else {
      fprintf(stderr, "usage: %s [--scale X]\n", argv[0]);
      exit(2);
    }
  }
  if (!(scale > 0 && scale <= 1000)) {
    fprintf(stderr, "usage: %s [--scale X (0 < X <= 1000)]\n", argv[0]);
    exit(2);
  }
  return scale;
}

#endif  // DRIFTWATCH_BENCH_PROGRAMS_BENCH_SCALE_H_
