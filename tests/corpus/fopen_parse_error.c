// Leak: a FILE* leaked from fopen. A config reloader opens the file on every reload and, when a
// line fails to parse (every 4th reload here), returns without fclose.
// Expect: drift, fds, reload_config.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "corpus_service.h"

static char config_path[] = "/tmp/driftwatch-corpus-config-XXXXXX";

CORPUS_NOINLINE static int reload_config(uint64_t request) {
  FILE* config = fopen(config_path, "r");
  if (config == NULL) return -1;
  char line[128];
  while (fgets(line, sizeof line, config) != NULL) {
    if (request % 4 == 0) return -1;  // "parse error": the FILE* and its fd leak
  }
  fclose(config);
  return 0;
}

static void handle(uint64_t request) { reload_config(request); }

int main(void) {
  int fd = mkstemp(config_path);
  if (fd < 0) return 2;
  if (write(fd, "listen = 8080\nworkers = 4\n", 26) != 26) return 2;
  close(fd);
  int result = corpus_serve(40, handle);
  unlink(config_path);
  return result;
}
