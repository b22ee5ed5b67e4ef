// Leak: timerfds never closed. An event loop creates a timerfd per retry schedule and forgets
// to close it when the retry succeeds.
// Expect: drift, fds, schedule_retry.
#include <sys/timerfd.h>
#include <unistd.h>

#include "corpus_service.h"

CORPUS_NOINLINE static int schedule_retry(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return -1;
  struct itimerspec in_a_second = {.it_value = {1, 0}};
  timerfd_settime(fd, 0, &in_a_second, NULL);
  return fd;  // the caller drops it: never closed
}

static void handle(uint64_t request) {
  if (request % 2 == 0) schedule_retry();
}

int main(void) { return corpus_serve(40, handle); }
