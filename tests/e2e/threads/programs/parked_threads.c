// Threads that wait forever on a condition variable, all made by spawn_worker().
//   parked_threads COUNT SECONDS: spawns COUNT workers at once, waits SECONDS, exits.
//   parked_threads -r MS: spawns one worker every MS milliseconds until killed (a thread leak).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void* park(void* arg) {
  pthread_mutex_lock(&mutex);
  for (;;) pthread_cond_wait(&never, &mutex);
  return arg;
}

__attribute__((noinline)) void spawn_worker(void) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, park, NULL) != 0) exit(2);
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "-r") == 0) {
    int period_ms = atoi(argv[2]);
    for (;;) {
      spawn_worker();
      usleep(period_ms * 1000);
    }
  }
  int count = argc > 1 ? atoi(argv[1]) : 5;
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  for (int i = 0; i < count; ++i) spawn_worker();
  usleep((useconds_t)(seconds * 1e6));
  return 0;
}
