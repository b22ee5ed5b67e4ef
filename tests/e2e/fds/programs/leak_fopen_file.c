// Reads a status file per request; parse failures (every third request) return without
// fclose, leaking the FILE and its descriptor. Runs until SIGTERM.
#include <signal.h>
#include <stdio.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

NOINLINE int read_status(int request) {
  FILE* file = fopen("/proc/self/status", "r");
  if (file == NULL) return -1;
  char line[256];
  if (fgets(line, sizeof line, file) == NULL || request % 3 == 0) return -1;  // leaks file
  fclose(file);
  return 0;
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 20 * 1000 * 1000};
  for (int request = 0; !stopping; ++request) {
    read_status(request);
    nanosleep(&pause, NULL);
  }
  return 0;
}
