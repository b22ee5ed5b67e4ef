// Reproducer (battery finding, seen on 812dc14): started under a low fd limit, a program can open
// two fewer files under the shim before EMFILE. Since 00d24d3 libunwind's address-validation pipe
// no longer takes fds 3 and 4, but it is placed at the top of the limit the process starts with
// (8 and 9 under `ulimit -n 16`, 960 and 961 under 1024), inside the program's budget: a program
// sized to its fd limit (a server with a connection cap) fails earlier, and tools that list
// /proc/self/fd see two more. (A limit lowered after start-up is not affected: the pipe then sits
// above it.) The README's known limits speak of one extra fd, the socket, which now lives in the
// census thread's own fd table.
//
// Usage: fd_budget        opens /dev/null until it fails and prints how many it could open
// Build: cc -O2 -o fd_budget fd_budget.c
// Run:   bash -c 'ulimit -n 32; exec ./fd_budget'                      # opened 29 (3 std fds)
//        bash -c 'ulimit -n 32; exec driftwatch run -- ./fd_budget'    # opened 27
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  int opened = 0;
  while (open("/dev/null", O_RDONLY) >= 0) ++opened;
  printf("opened %d before %s\n", opened, strerror(errno));
  return 0;
}
