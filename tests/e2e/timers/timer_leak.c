// A request loop that arms a timeout timer per request and never deletes it. Runs until
// SIGTERM. Bounded churn beside it: a timer created and deleted per request.
#include <signal.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

NOINLINE void arm_request_timeout(void) {
  struct sigevent event = {.sigev_notify = SIGEV_NONE};
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) == 0) {
    struct itimerspec in_a_minute = {.it_value = {60, 0}};
    timer_settime(timer, 0, &in_a_minute, NULL);  // never deleted: the leak
  }
}

NOINLINE void measure_request(void) {
  struct sigevent event = {.sigev_notify = SIGEV_NONE};
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) == 0) timer_delete(timer);
}

int main(int argc, char** argv) {
  (void)argv;
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 5 * 1000 * 1000};  // ~200 requests per second
  for (int request = 0; !stopping; ++request) {
    if (argc == 1) arm_request_timeout();  // with an argument: churn only, no leak
    measure_request();
    nanosleep(&pause, NULL);
  }
  return 0;
}
