// A prefork-style parent: 50 children that exit() at once. Children younger than one census
// interval send nothing, so the collector hears from the parent alone.
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  for (int i = 0; i < 50; ++i) {
    pid_t child = fork();
    if (child == 0) {
      free(malloc(32));
      exit(0);
    }
    if (child > 0) waitpid(child, NULL, 0);
  }
  for (int i = 0; i < 30; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return 0;
}
