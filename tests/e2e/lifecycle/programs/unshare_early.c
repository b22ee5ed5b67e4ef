// Calls unshare(CLONE_NEWUSER) at start-up, as sandboxes do, then works long enough to report.
// Exit 0: unshare worked (or the machine forbids user namespaces: EPERM/ENOSPC, not the shim's
// doing); exit 3: EINVAL, the error of a multithreaded process.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void) {
  int status = 0;
  if (unshare(CLONE_NEWUSER) != 0) {
    if (errno == EINVAL) status = 3;
    fprintf(stderr, "unshare: errno %d\n", errno);
  }
  for (int i = 0; i < 30; ++i) {
    free(malloc(100));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return status;
}
