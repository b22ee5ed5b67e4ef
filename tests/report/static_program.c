/* static_program.c: a statically linked program, which `driftwatch run` must refuse before
 * running it (LD_PRELOAD cannot load into it). Creates the file named by argv[1], so a test can
 * tell whether it ran. */
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc > 1) {
    FILE* file = fopen(argv[1], "w");
    if (file != NULL) fclose(file);
  }
  return 0;
}
