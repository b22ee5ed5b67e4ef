// A request loop that leaks 100 bytes per request from one function (an audit trail that is
// appended to and never trimmed), beside bounded churn. Runs until SIGTERM.
// Usage: leak_per_request [KIB_PER_S]: the leak's rate, paced against the clock (default 500
// requests per second, ~49 KiB/s); the same program is a fast or a slow leak for sampled mode.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

struct AuditEntry {
  struct AuditEntry* next;
  char text[100 - sizeof(struct AuditEntry*)];
};
static struct AuditEntry* audit_trail;
static volatile sig_atomic_t stopping;

NOINLINE void record_audit_entry(int request) {
  struct AuditEntry* entry = malloc(sizeof *entry);  // 100 bytes, never freed
  memset(entry->text, 'a' + request % 26, sizeof entry->text);
  entry->next = audit_trail;
  audit_trail = entry;
}

NOINLINE void handle_request(int request) {
  char* scratch = malloc(512 + (size_t)(request % 7) * 64);  // freed: bounded churn
  memset(scratch, 0, 512);
  record_audit_entry(request);
  free(scratch);
}

static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

int main(int argc, char** argv) {
  signal(SIGTERM, on_term);
  const double requests_per_s = argc > 1 ? atof(argv[1]) * 1024 / sizeof(struct AuditEntry) : 500;
  // Every millisecond, the requests due by now.
  struct timespec start, now, tick = {0, 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long done = 0; !stopping;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double elapsed =
        (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
    for (const long due = (long)(elapsed * requests_per_s); done < due; ++done) {
      handle_request((int)done);
    }
    nanosleep(&tick, NULL);
  }
  return 0;
}
