// Steady alloc/free churn with a bounded working set (a fixed-size ring of buffers that are
// replaced over and over). Nothing grows; runs until SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))
enum { kRing = 512 };
static char* ring[kRing];
static volatile sig_atomic_t stopping;

NOINLINE void replace_buffer(int request) {
  int slot = request % kRing;
  free(ring[slot]);
  ring[slot] = malloc(64 + (size_t)(request * 37 % 1000));
  memset(ring[slot], 1, 64);
}

NOINLINE void handle_request(int request) {
  char* scratch = malloc(256);
  memset(scratch, 0, 256);
  replace_buffer(request);
  free(scratch);
}

static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 2 * 1000 * 1000};
  for (int request = 0; !stopping; ++request) {
    handle_request(request);
    nanosleep(&pause, NULL);
  }
  return 0;
}
