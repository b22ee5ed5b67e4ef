// Leak: threads parked forever. A server spawns a thread per long-poll connection; the thread
// waits on a condition variable for an event that the connection's close path never signals.
// Expect: drift, threads, spawn_worker.
#include <pthread.h>

#include "corpus_service.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t event = PTHREAD_COND_INITIALIZER;
static int event_ready;

static void* wait_for_event(void* argument) {
  pthread_mutex_lock(&mutex);
  while (!event_ready) pthread_cond_wait(&event, &mutex);
  pthread_mutex_unlock(&mutex);
  return argument;
}

CORPUS_NOINLINE static void spawn_worker(void) {
  pthread_t thread;
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, 64 * 1024);
  if (pthread_create(&thread, &attributes, wait_for_event, NULL) == 0) pthread_detach(thread);
  pthread_attr_destroy(&attributes);
}

static void handle(uint64_t request) {
  if (request % 10 == 0) spawn_worker();  // 2 connections a second
}

int main(void) { return corpus_serve(20, handle); }
