// POSIX timers through every symbol version glibc exports. Each version is called from its own
// function; the compatibility ABI (GLIBC_2.2.5) must keep working, which it only does if the
// shim forwards each version to the same version.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

int timer_create_compat(clockid_t clock, struct sigevent* event, timer_t* timer);
int timer_delete_compat(timer_t timer);
int timer_create_2_3_3(clockid_t clock, struct sigevent* event, timer_t* timer);
int timer_delete_2_3_3(timer_t timer);
__asm__(".symver timer_create_compat, timer_create@GLIBC_2.2.5");
__asm__(".symver timer_delete_compat, timer_delete@GLIBC_2.2.5");
__asm__(".symver timer_create_2_3_3, timer_create@GLIBC_2.3.3");
__asm__(".symver timer_delete_2_3_3, timer_delete@GLIBC_2.3.3");

static struct sigevent quiet = {.sigev_notify = SIGEV_NONE};
static int failures;

static void check(int result, const char* what) {
  if (result != 0) {
    printf("%s failed: %s\n", what, strerror(errno));
    ++failures;
  }
}

NOINLINE void current_abi_leak(timer_t* out) {
  check(timer_create(CLOCK_MONOTONIC, &quiet, out), "timer_create");
}

NOINLINE void current_abi_balanced(void) {
  timer_t timer;
  check(timer_create(CLOCK_MONOTONIC, &quiet, &timer), "timer_create");
  check(timer_delete(timer), "timer_delete");
}

NOINLINE void version_2_3_3_leak(timer_t* out) {
  struct sigevent signal_event = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
  check(timer_create_2_3_3(CLOCK_REALTIME, &signal_event, out), "timer_create@GLIBC_2.3.3");
}

NOINLINE void version_2_3_3_balanced(void) {
  timer_t timer;
  check(timer_create_2_3_3(CLOCK_MONOTONIC, &quiet, &timer), "timer_create@GLIBC_2.3.3");
  check(timer_delete_2_3_3(timer), "timer_delete@GLIBC_2.3.3");
}

NOINLINE void compat_abi_leak(timer_t* out) {
  check(timer_create_compat(CLOCK_MONOTONIC, &quiet, out), "timer_create@GLIBC_2.2.5");
}

NOINLINE void compat_abi_balanced(void) {
  timer_t timer;
  check(timer_create_compat(CLOCK_MONOTONIC, &quiet, &timer), "timer_create@GLIBC_2.2.5");
  // Deleting through the compat ABI only works if the id is a compat id.
  check(timer_delete_compat(timer), "timer_delete@GLIBC_2.2.5");
}

int main(void) {
  signal(SIGUSR1, SIG_IGN);
  timer_t kept[6];
  for (int i = 0; i < 2; ++i) current_abi_leak(&kept[i]);
  for (int i = 2; i < 5; ++i) version_2_3_3_leak(&kept[i]);
  compat_abi_leak(&kept[5]);
  for (int i = 0; i < 50; ++i) {
    current_abi_balanced();
    version_2_3_3_balanced();
    compat_abi_balanced();
  }
  printf("timer_every_version done, %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
