// A parent with parked threads forks; only the forking thread exists in the child, which makes
// threads of its own:
//   parent: parent_threads 4 live;  child: parent_threads 0 live, child_threads 3 live.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static void* park(void* arg) {
  for (;;) pause();
  return arg;
}

static void* quick(void* arg) { return arg; }

__attribute__((noinline)) void parent_threads(void) {
  pthread_t thread;
  for (int i = 0; i < 4; ++i) pthread_create(&thread, NULL, park, NULL);
}

__attribute__((noinline)) void child_threads(void) {
  pthread_t thread;
  for (int i = 0; i < 3; ++i) pthread_create(&thread, NULL, park, NULL);
  pthread_create(&thread, NULL, quick, NULL);
  pthread_join(thread, NULL);
}

int main(void) {
  parent_threads();
  usleep(300 * 1000);
  pid_t child = fork();
  if (child == 0) {
    child_threads();
    usleep(400 * 1000);
    return 0;
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
