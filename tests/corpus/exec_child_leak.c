// Leak in an exec'd child: a supervisor that spawns its worker with fork + exec (of itself,
// with an argument). The worker leaks a session record per request; the supervisor only waits.
// Expect: drift, heap, open_worker_session (in the exec'd worker).
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus_service.h"

struct Session {
  struct Session* next;
  char user[120];
};
static struct Session* sessions;

CORPUS_NOINLINE static void open_worker_session(uint64_t request) {
  struct Session* session = malloc(sizeof *session);
  memset(session->user, 'u', sizeof session->user);
  session->next = sessions;
  sessions = session;
  (void)request;
}

static void supervise(uint64_t request) { (void)request; }

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "worker") == 0) return corpus_serve(200, open_worker_session);
  pid_t worker = fork();
  if (worker == 0) {
    execl("/proc/self/exe", argv[0], "worker", (char*)NULL);
    _exit(127);
  }
  corpus_serve(10, supervise);
  kill(worker, SIGTERM);
  waitpid(worker, NULL, 0);
  return 0;
}
