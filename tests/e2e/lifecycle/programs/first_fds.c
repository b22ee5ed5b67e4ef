// Started with only stdin, stdout and stderr open: the first open() must return 3 and the
// first pipe() 4 and 5, as without the shim (POSIX: the lowest free number). Exit 1 otherwise.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
  const int fd = open("/dev/null", O_RDONLY);
  int pipe_fds[2] = {-1, -1};
  if (pipe(pipe_fds) != 0) return 2;
  printf("open: %d, pipe: %d %d\n", fd, pipe_fds[0], pipe_fds[1]);
  return fd == 3 && pipe_fds[0] == 4 && pipe_fds[1] == 5 ? 0 : 1;
}
