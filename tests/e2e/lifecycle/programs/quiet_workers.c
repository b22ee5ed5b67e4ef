// A parent with three workers that block for a second without a single allocation, then
// leave with _exit (as Python's multiprocessing workers do): every worker must be heard from,
// though no hook of theirs ever ran after the fork.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  int hold[2];
  if (pipe(hold) != 0) return 2;
  for (int i = 0; i < 3; ++i) {
    if (fork() == 0) {
      char byte;
      close(hold[1]);
      (void)!read(hold[0], &byte, 1);  // blocks until the parent closes its end
      _exit(0);
    }
  }
  close(hold[0]);
  sleep(1);
  close(hold[1]);
  while (wait(NULL) > 0) {
  }
  return 0;
}
