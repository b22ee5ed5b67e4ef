// A request loop that leaks 100 bytes per request from one function (an audit trail that is
// appended to and never trimmed), beside bounded churn. Runs until SIGTERM.
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

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 2 * 1000 * 1000};  // ~500 requests per second
  for (int request = 0; !stopping; ++request) {
    handle_request(request);
    nanosleep(&pause, NULL);
  }
  return 0;
}
