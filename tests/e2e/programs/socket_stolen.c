// The target closes every descriptor above stderr, as daemons do, and puts a file of its own on
// the freed numbers. The shim's census socket must not be among its descriptors at all (it
// lives in the census thread's own table), must never be written into the target's file, and
// must carry on. Exit 0 if all holds, 1 if census bytes reached the file, 4 if a socket was in
// the program's table.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE void* allocate_after_theft(void) {
  void* p = malloc(4000);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

static int count_sockets(void) {
  DIR* fds = opendir("/proc/self/fd");
  int found = 0;
  for (struct dirent* entry; (entry = readdir(fds)) != NULL;) {
    char path[300], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strncmp(target, "socket:", 7) == 0) ++found;
    }
  }
  closedir(fds);
  return found;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  usleep(300 * 1000);  // the shim connects and sends a few censuses
  const int sockets = count_sockets();
  syscall(SYS_close_range, 3u, ~0u, 0u);
  int file = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  for (int fd = file + 1; fd < 1100; ++fd) dup2(file, fd);  // every low and middle number
  for (int i = 0; i < 10; ++i) {
    allocate_after_theft();
    usleep(50 * 1000);  // several census intervals pass
  }
  struct stat status;
  fstat(file, &status);
  printf("sockets seen %d, file size after theft %lld\n", sockets, (long long)status.st_size);
  if (sockets != 0) return 4;
  return status.st_size == 0 ? 0 : 1;
}
