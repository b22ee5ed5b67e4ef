// The target closes the shim's census socket and puts a file of its own on that fd number.
// The shim must never write into the target's file, and must reconnect on a fresh socket.
// Exit 0 if the file stayed empty, 1 if census bytes leaked into it.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

NOINLINE void* allocate_after_theft(void) {
  void* p = malloc(4000);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

static int find_socket_fd(void) {
  DIR* fds = opendir("/proc/self/fd");
  int found = -1;
  for (struct dirent* entry; (entry = readdir(fds)) != NULL;) {
    char path[300], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strncmp(target, "socket:", 7) == 0) found = atoi(entry->d_name);
    }
  }
  closedir(fds);
  return found;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  usleep(300 * 1000);  // the shim connects and sends a few censuses
  int census_fd = find_socket_fd();
  if (census_fd < 0) {
    puts("no census socket found");
    return 1;
  }
  close(census_fd);
  int file = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (file != census_fd && dup2(file, census_fd) >= 0) close(file);
  for (int i = 0; i < 10; ++i) {
    allocate_after_theft();
    usleep(50 * 1000);  // several census intervals pass
  }
  struct stat status;
  fstat(census_fd, &status);
  printf("census fd %d, file size after theft %lld\n", census_fd, (long long)status.st_size);
  return status.st_size == 0 ? 0 : 1;
}
