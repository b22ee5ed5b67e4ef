// Linked with libfd_keeper.so, whose destructor closes the 50 descriptors it opened.
#include <stdlib.h>
#include <time.h>

int fd_keeper_open(void);

int main(void) {
  if (fd_keeper_open() != 50) return 1;
  for (int i = 0; i < 20; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return 0;
}
