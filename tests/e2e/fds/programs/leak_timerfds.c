// Arms a timeout per request with a timerfd that is never closed. Runs until SIGTERM.
#include <signal.h>
#include <sys/timerfd.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

NOINLINE int arm_request_timeout(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec timeout = {{0, 0}, {30, 0}};
  timerfd_settime(fd, 0, &timeout, NULL);
  return fd;  // the caller never closes it
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 50 * 1000 * 1000};
  while (!stopping) {
    arm_request_timeout();
    nanosleep(&pause, NULL);
  }
  return 0;
}
