// A SIGEV_THREAD timer, whose helper and notification threads glibc creates internally, out of
// reach of the pthread_create hook. The notification function blocks, so at exit there is the
// helper thread and one notification thread per expiry: all must be counted somewhere.
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static atomic_int notified;

static void on_expiry(union sigval value) {
  (void)value;
  atomic_fetch_add(&notified, 1);
  sleep(100);  // still running when the process exits
}

__attribute__((noinline)) timer_t start_thread_timer(void) {
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_notify_function = on_expiry;
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) _exit(2);
  struct itimerspec spec = {{0, 0}, {0, 50 * 1000 * 1000}};  // once, after 50 ms
  if (timer_settime(timer, 0, &spec, NULL) != 0) _exit(3);
  return timer;
}

int main(void) {
  start_thread_timer();
  while (atomic_load(&notified) < 1) usleep(1000);
  usleep(600 * 1000);  // several censuses with both threads alive
  return 0;
}
