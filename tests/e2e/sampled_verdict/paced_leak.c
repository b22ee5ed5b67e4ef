// A request loop that leaks a 64-byte session tag per request (a list that is never trimmed)
// beside bounded churn, at a paced rate given in KiB/s (argument 1): the same program is a fast
// or a slow leak for sampled mode. Runs until SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

struct Tag {
  struct Tag* next;
  char text[64 - sizeof(struct Tag*)];
};
static struct Tag* tags;
static volatile sig_atomic_t stopping;

NOINLINE void remember_session_tag(int request) {
  struct Tag* tag = malloc(sizeof *tag);  // 64 bytes, never freed
  memset(tag->text, 'a' + request % 26, sizeof tag->text);
  tag->next = tags;
  tags = tag;
}

NOINLINE void handle_request(int request) {
  char* scratch = malloc(256 + (size_t)(request % 5) * 64);  // freed: bounded churn
  memset(scratch, 0, 256);
  remember_session_tag(request);
  free(scratch);
}

static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

int main(int argc, char** argv) {
  signal(SIGTERM, on_term);
  const long kib_per_s = argc > 1 ? atol(argv[1]) : 64;
  // Requests of 64 leaked bytes: 16 per KiB; paced in batches every millisecond.
  const long per_ms = kib_per_s * 16 / 1000 > 0 ? kib_per_s * 16 / 1000 : 1;
  const long pause_ns =
      kib_per_s * 16 >= 1000 ? 1000 * 1000 : 1000L * 1000 * 1000 / (kib_per_s * 16);
  struct timespec pause = {pause_ns / 1000000000, pause_ns % 1000000000};
  for (int request = 0; !stopping;) {
    for (long i = 0; i < per_ms; ++i) handle_request(request++);
    nanosleep(&pause, NULL);
  }
  return 0;
}
