// main ends with pthread_exit(0) while a worker still runs; the process must end when the
// worker does, with status 0, as it does without the shim.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static void* worker(void* arg) {
  (void)arg;
  for (int i = 0; i < 40; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return NULL;
}

int main(void) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, NULL) != 0) return 2;
  pthread_exit(0);
}
