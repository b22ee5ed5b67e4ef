// A request loop that runs a helper program through fork and exec and reads its output. When
// the helper's output is empty (every fourth request, an "error"), run_helper returns early and
// leaves the read end of the pipe open: one fd per failed request. Runs until SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

NOINLINE int run_helper(int request) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    // The helper prints nothing for every fourth request.
    execl("/bin/sh", "sh", "-c", request % 4 == 0 ? "exit 0" : "echo ok", (char*)NULL);
    _exit(127);
  }
  close(fds[1]);
  char buffer[16];
  ssize_t got = read(fds[0], buffer, sizeof buffer);
  waitpid(child, NULL, 0);
  if (got <= 0) return -1;  // the error path forgets fds[0]
  close(fds[0]);
  return 0;
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 40 * 1000 * 1000};
  for (int request = 0; !stopping; ++request) {
    run_helper(request);
    nanosleep(&pause, NULL);
  }
  return 0;
}
