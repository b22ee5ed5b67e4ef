// Steady: a thread created and joined per request, plus one detached per ten requests.
// Expect: steady.
#include <pthread.h>

#include "corpus_service.h"

static void* work(void* argument) {
  volatile int sum = 0;
  for (int i = 0; i < 1000; ++i) sum += i;
  return argument;
}

CORPUS_NOINLINE static void run_task(uint64_t request) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, work, NULL) != 0) return;
  if (request % 10 == 0) {
    pthread_detach(thread);
  } else {
    pthread_join(thread, NULL);
  }
}

int main(void) { return corpus_serve(100, run_task); }
