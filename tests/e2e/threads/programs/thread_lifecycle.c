// Every way a thread ends, with exact counts per creating function:
//   create_joined: 50 created and joined -> 0 live
//   create_detached: 30 detached (10 by attribute, 10 by themselves, 10 by the creator) -> 0
//   create_exiting: 5 leave through pthread_exit(42), joined -> 0 live, values intact
//   create_cancelled: 5 cancelled while blocked, joined -> 0 live, PTHREAD_CANCELED
//   create_unjoined: 7 return and are never joined -> 7 live, exited_unjoined
// Exits 0 only if every thread call behaved as without the shim.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int finished;
static int failures;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

static void* returns_arg(void* arg) {
  atomic_fetch_add(&finished, 1);
  return arg;
}

static void* detaches_itself(void* arg) {
  pthread_detach(pthread_self());
  atomic_fetch_add(&finished, 1);
  return arg;
}

static void* exits_early(void* arg) {
  (void)arg;
  pthread_exit((void*)42);
  return NULL;  // never reached
}

static void* blocks_forever(void* arg) {
  (void)arg;
  for (;;) pause();  // a cancellation point
  return NULL;
}

__attribute__((noinline)) void create_joined(void) {
  for (int i = 0; i < 50; ++i) {
    pthread_t thread;
    void* result = NULL;
    check(pthread_create(&thread, NULL, returns_arg, (void*)(intptr_t)i) == 0, "create");
    check(pthread_join(thread, &result) == 0 && result == (void*)(intptr_t)i, "join value");
  }
}

__attribute__((noinline)) void create_detached(void) {
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  int before = atomic_load(&finished);
  for (int i = 0; i < 10; ++i) {
    pthread_t thread;
    check(pthread_create(&thread, &detached, returns_arg, NULL) == 0, "create detached");
    check(pthread_create(&thread, NULL, detaches_itself, NULL) == 0, "create self-detaching");
    check(pthread_create(&thread, NULL, returns_arg, NULL) == 0, "create then detach");
    check(pthread_detach(thread) == 0, "detach");
  }
  pthread_attr_destroy(&detached);
  while (atomic_load(&finished) < before + 30) usleep(1000);
}

__attribute__((noinline)) void create_exiting(void) {
  for (int i = 0; i < 5; ++i) {
    pthread_t thread;
    void* result = NULL;
    check(pthread_create(&thread, NULL, exits_early, NULL) == 0, "create exiting");
    check(pthread_join(thread, &result) == 0 && result == (void*)42, "pthread_exit value");
  }
}

__attribute__((noinline)) void create_cancelled(void) {
  for (int i = 0; i < 5; ++i) {
    pthread_t thread;
    void* result = NULL;
    check(pthread_create(&thread, NULL, blocks_forever, NULL) == 0, "create blocking");
    usleep(2000);
    check(pthread_cancel(thread) == 0, "cancel");
    check(pthread_join(thread, &result) == 0 && result == PTHREAD_CANCELED, "cancelled value");
  }
}

__attribute__((noinline)) void create_unjoined(void) {
  int before = atomic_load(&finished);
  for (int i = 0; i < 7; ++i) {
    pthread_t thread;
    check(pthread_create(&thread, NULL, returns_arg, NULL) == 0, "create unjoined");
  }
  while (atomic_load(&finished) < before + 7) usleep(1000);
}

int main(void) {
  create_joined();
  create_detached();
  create_exiting();
  create_cancelled();
  create_unjoined();
  usleep(300 * 1000);  // detached threads finish exiting; a census or two goes out
  return failures == 0 ? 0 : 1;
}
