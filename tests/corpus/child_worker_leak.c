// Leak in a child process: a prefork server whose master forks three workers. One worker (the
// one that handles uploads) leaks a 512-byte upload context per request; its siblings and the
// master stay steady. Only the leaking worker may be named.
// Expect: drift, heap, keep_upload_context (in one child process only).
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus_service.h"

struct UploadContext {
  struct UploadContext* next;
  char state[504];
};
static struct UploadContext* contexts;

CORPUS_NOINLINE static void keep_upload_context(uint64_t request) {
  struct UploadContext* context = malloc(sizeof *context);
  memset(context->state, (int)(request & 0xff), sizeof context->state);
  context->next = contexts;
  contexts = context;
}

static void handle_uploads(uint64_t request) { keep_upload_context(request); }

static void handle_static(uint64_t request) {
  char* page = malloc(2048);
  memset(page, (int)(request & 0xff), 2048);
  CORPUS_KEEP(page);
  free(page);
}

static void master_tick(uint64_t request) { (void)request; }

int main(void) {
  pid_t workers[3];
  for (int i = 0; i < 3; ++i) {
    workers[i] = fork();
    if (workers[i] == 0) return corpus_serve(100, i == 1 ? handle_uploads : handle_static);
  }
  corpus_serve(10, master_tick);
  for (int i = 0; i < 3; ++i) kill(workers[i], SIGTERM);
  while (wait(NULL) > 0) {
  }
  return 0;
}
