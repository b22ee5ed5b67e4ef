// corpus_service.h: the request loop every corpus program is built on.
//
// Each corpus program models one real incident: a service that handles requests at a steady
// rate until SIGTERM, with one way of leaking (or, for the steady programs, none). This header
// gives them the same loop, the same clean shutdown and the same pacing, so that the programs
// differ only in what their requests do.
#ifndef DRIFTWATCH_TESTS_CORPUS_CORPUS_SERVICE_H_
#define DRIFTWATCH_TESTS_CORPUS_CORPUS_SERVICE_H_

#include <signal.h>
#include <stdint.h>
#include <time.h>

#define CORPUS_NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))
#define CORPUS_KEEP(p) __asm__ volatile("" ::"r"(p) : "memory")

static volatile sig_atomic_t corpus_stopping;

static void corpus_on_term(int signal_number) {
  (void)signal_number;
  corpus_stopping = 1;
}

// Calls handle(request) `per_second` times a second until SIGTERM or SIGINT; returns 0.
static int corpus_serve(int per_second, void (*handle)(uint64_t request)) {
  struct sigaction action;
  __builtin_memset(&action, 0, sizeof action);
  action.sa_handler = corpus_on_term;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  const long step_ns = 1000000000L / per_second;
  for (uint64_t request = 0; !corpus_stopping; ++request) {
    handle(request);
    next.tv_nsec += step_ns;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      ++next.tv_sec;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) != 0 && !corpus_stopping) {
    }
  }
  return 0;
}

// A deterministic pseudo-random number (xorshift), so every run does the same work.
__attribute__((unused)) static uint64_t corpus_random(void) {
  static uint64_t state = 0x2545F4914F6CDD1Dull;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

#endif  // DRIFTWATCH_TESTS_CORPUS_CORPUS_SERVICE_H_
