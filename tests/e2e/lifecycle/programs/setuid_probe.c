// Run set-uid root by an unprivileged user with the shim preloaded: works a little (allocations,
// censuses due), then says whether the shim is loaded at all, so that a silent collector proves
// the shim stayed dormant rather than absent. Exit 0: loaded; 3: not loaded.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(void) {
  for (int i = 0; i < 30; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return 2;
  char line[512];
  int loaded = 0;
  while (fgets(line, sizeof line, maps) != NULL) loaded |= strstr(line, "libdriftwatch") != NULL;
  fclose(maps);
  return loaded ? 0 : 3;
}
