// Thread churn: 20000 threads created and joined, and 5000 detached, at full speed, by
// churn_threads(). Nothing stays live.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

int main(void) {
  churn_threads();
  usleep(300 * 1000);  // the last detached threads finish exiting
  return 0;
}
