// A vfork child that calls exit() (not _exit) runs the exit handlers on its parent's memory.
// The parent must go on reporting: it leaks for a while after, census after census.
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void* volatile g_sink;

int main(void) {
  pid_t child = vfork();
  if (child == 0) exit(0);
  if (child < 0) return 2;
  waitpid(child, NULL, 0);
  for (int i = 0; i < 150; ++i) {
    g_sink = malloc(256);  // leaked on purpose
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return 0;
}
