// Leak: a subprocess pipe left open on an error path. A job runner starts a helper with pipe,
// fork and exec; when the helper's output is "unexpected" (every 3rd run) it returns without
// closing the read end.
// Expect: drift, fds, run_helper.
#include <sys/wait.h>
#include <unistd.h>

#include "corpus_service.h"

CORPUS_NOINLINE static int run_helper(uint64_t request) {
  int ends[2];
  if (pipe(ends) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    dup2(ends[1], 1);
    execl("/bin/echo", "echo", "ok", (char*)NULL);
    _exit(127);
  }
  close(ends[1]);
  char output[16];
  ssize_t got = read(ends[0], output, sizeof output);
  waitpid(child, NULL, 0);
  if (got <= 0 || request % 3 == 0) return -1;  // "unexpected output": leaks ends[0]
  close(ends[0]);
  return 0;
}

static void handle(uint64_t request) { run_helper(request); }

int main(void) { return corpus_serve(20, handle); }
