// Steady: high-rate churn of every fd kind, all closed: files, directories, sockets, socket
// pairs, pipes, eventfds, timerfds, epoll, memfd, FILE streams.
// Expect: steady.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "corpus_service.h"

CORPUS_NOINLINE static void churn_everything(void) {
  int fds[2];
  close(open("/proc/self/status", O_RDONLY));
  closedir(opendir("/proc/self"));
  close(socket(AF_INET, SOCK_DGRAM, 0));
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
    close(fds[0]);
    close(fds[1]);
  }
  if (pipe(fds) == 0) {
    close(fds[0]);
    close(fds[1]);
  }
  close(eventfd(0, 0));
  close(timerfd_create(CLOCK_MONOTONIC, 0));
  close(epoll_create1(0));
  close(memfd_create("corpus", 0));
  FILE* stream = fopen("/proc/self/stat", "r");
  if (stream != NULL) fclose(stream);
  int copy = dup(0);
  if (copy >= 0) close(copy);
}

static void handle(uint64_t request) {
  (void)request;
  churn_everything();
}

int main(void) { return corpus_serve(200, handle); }
