// Reproducer (battery finding, seen on 1d6ec51 and e752519, fixed by 00d24d3): under the shim
// the lowest free descriptors of every process were taken before main ran, so the program's first
// open() returned 5 instead of 3 (POSIX: the lowest free number). libunwind's address-validation
// pipe (pipe2(O_CLOEXEC|O_NONBLOCK), made by unw_set_caching_policy from Unwinder::Init in the
// shim's constructor) held fds 3 and 4 for the life of every instrumented process, with or
// without a collector. Visible in real programs: python3 -c 'import os; print(os.pipe())' printed
// (3, 4) bare and (5, 6) under the shim. Kept as a regression check; python3_fds asserts it.
//
// Usage: first_fd            prints the first fds that open() and pipe() return; exit 1 unless
//                            they are 3, then 4 and 5 (what a bare process gets)
// Build: cc -O2 -o first_fd first_fd.c
// Run:   ./first_fd; driftwatch run -- ./first_fd     # exit 0 bare; 3 under driftwatch (fd 5)
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
