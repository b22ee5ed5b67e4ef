// A program for `driftwatch collect --pid/--match` (built -static: the shim cannot enter it).
// Usage: proc_target MODE PERIOD_MS SECONDS
//   pipes:   keeps one more pipe every PERIOD_MS (a descriptor leak of type pipe)
//   threads: starts one more thread that blocks forever every PERIOD_MS
//   steady:  opens and closes a pipe and a socket pair every PERIOD_MS, holds a fixed few
// Exits after SECONDS.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void* Block(void* unused) {
  (void)unused;
  for (;;) pause();
  return NULL;
}

static void SleepMs(long ms) {
  struct timespec delay = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&delay, NULL);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s pipes|threads|steady PERIOD_MS SECONDS\n", argv[0]);
    return 2;
  }
  const char* mode = argv[1];
  const long period_ms = atol(argv[2]);
  const long rounds = atol(argv[3]) * 1000 / period_ms;
  int held[2];
  if (pipe(held) != 0) return 1;  // the steady mode's fixed few
  for (long i = 0; i < rounds; ++i) {
    int fds[2];
    if (strcmp(mode, "pipes") == 0) {
      if (pipe(fds) != 0) return 1;
    } else if (strcmp(mode, "threads") == 0) {
      pthread_t thread;
      if (pthread_create(&thread, NULL, Block, NULL) != 0) return 1;
    } else {
      if (pipe(fds) != 0) return 1;
      close(fds[0]);
      close(fds[1]);
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
      close(fds[0]);
      close(fds[1]);
    }
    SleepMs(period_ms);
  }
  return 0;
}
