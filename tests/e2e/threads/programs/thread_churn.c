// Thread churn: 20000 threads created and joined, and 5000 detached, at full speed, by
// churn_threads(). Nothing stays live. With the argument "forever", a steady service instead:
// joined and detached threads at a paced rate until SIGTERM (for `driftwatch run`).
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static atomic_int detached_done;

static void* work(void* arg) { return arg; }

static void* detached_work(void* arg) {
  atomic_fetch_add(&detached_done, 1);
  return arg;
}

__attribute__((noinline)) void churn_threads(void) {
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < 20000; ++i) {
    pthread_t thread;
    void* result;
    if (pthread_create(&thread, NULL, work, (void*)(intptr_t)i) != 0) _exit(2);
    if (pthread_join(thread, &result) != 0 || result != (void*)(intptr_t)i) _exit(3);
    if (i % 4 == 0) {
      while (pthread_create(&thread, &detached, detached_work, NULL) != 0) usleep(100);
    }
  }
  pthread_attr_destroy(&detached);
  while (atomic_load(&detached_done) < 5000) usleep(1000);
}

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

__attribute__((noinline)) void churn_threads_steadily(void) {
  signal(SIGTERM, on_term);
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  while (!stopping) {
    for (int i = 0; i < 10; ++i) {
      pthread_t thread;
      if (pthread_create(&thread, NULL, work, NULL) == 0) pthread_join(thread, NULL);
    }
    pthread_t thread;
    pthread_create(&thread, &detached, detached_work, NULL);
    usleep(10 * 1000);
  }
  pthread_attr_destroy(&detached);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "forever") == 0) {
    churn_threads_steadily();
    return 0;
  }
  churn_threads();
  usleep(300 * 1000);  // the last detached threads finish exiting
  return 0;
}
