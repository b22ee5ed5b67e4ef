/* asan_fd_leak.c: built with -fsanitize=address. Leaks one fd per request in leak_fd() and
 * allocates as it goes; under `driftwatch run` it must start (the sanitizer runtime goes before
 * the shim), print its line, and the fd leak must be found. Usage: asan_fd_leak [REQUESTS]. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static int leak_fd(void) { return open("/dev/null", O_RDONLY); }

int main(int argc, char** argv) {
  const int requests = argc > 1 ? atoi(argv[1]) : 40;
  for (int i = 0; i < requests; ++i) {
    char* scratch = malloc(256);
    memset(scratch, 1, 256);
    free(scratch);
    if (leak_fd() < 0) return 1;
    usleep(50 * 1000);
  }
  puts("asan_fd_leak: done");
  return 0;
}
