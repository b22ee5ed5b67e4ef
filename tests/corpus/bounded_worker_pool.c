// Steady: a bounded worker pool. Four workers started at boot take jobs from a queue; every job
// allocates and frees its own buffers.
// Expect: steady.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "corpus_service.h"

enum { kWorkers = 4, kQueue = 64 };
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static char* queue[kQueue];
static int head, tail;

static void* worker(void* argument) {
  for (;;) {
    pthread_mutex_lock(&mutex);
    while (head == tail) pthread_cond_wait(&ready, &mutex);
    char* job = queue[head++ % kQueue];
    pthread_mutex_unlock(&mutex);
    char* scratch = malloc(1024);
    memcpy(scratch, job, 128);
    CORPUS_KEEP(scratch);
    free(scratch);
    free(job);
  }
  return argument;
}

CORPUS_NOINLINE static void submit_job(uint64_t request) {
  char* job = malloc(128);
  memset(job, (int)(request & 0xff), 128);
  pthread_mutex_lock(&mutex);
  if (tail - head < kQueue) {
    queue[tail++ % kQueue] = job;
    job = NULL;
  }
  pthread_cond_signal(&ready);
  pthread_mutex_unlock(&mutex);
  free(job);  // queue full: dropped
}

int main(void) {
  pthread_t workers[kWorkers];
  for (int i = 0; i < kWorkers; ++i) pthread_create(&workers[i], NULL, worker, NULL);
  return corpus_serve(500, submit_job);
}
