// Every fd kind created and closed at a high rate, plus a bounded ring of descriptors that are
// kept for a while and then replaced: live counts move but never grow. Runs until SIGTERM.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

static int ring[64];
static unsigned ring_next;
// Keeps `fd` for the next 64 calls, closing the one it replaces.
static void keep_for_a_while(int fd) {
  unsigned slot = ring_next++ % 64;
  if (ring[slot] > 0) close(ring[slot]);
  ring[slot] = fd;
}

NOINLINE void churn_files(void) {
  close(open("/etc/passwd", O_RDONLY));
  FILE* file = fopen("/etc/hostname", "r");
  if (file != NULL) fclose(file);
  DIR* directory = opendir("/");
  if (directory != NULL) closedir(directory);
  keep_for_a_while(open("/dev/null", O_RDONLY));
}

NOINLINE void churn_ipc(void) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) == 0) {
    close(fds[0]);
    keep_for_a_while(fds[1]);
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
    keep_for_a_while(dup(fds[0]));
    close(fds[0]);
    close(fds[1]);
  }
  close(socket(AF_INET, SOCK_DGRAM, 0));
}

NOINLINE void churn_anonymous(void) {
  close(eventfd(0, 0));
  keep_for_a_while(timerfd_create(CLOCK_MONOTONIC, 0));
  close(epoll_create1(0));
  close(inotify_init1(0));
  close(memfd_create("churn", 0));
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 200 * 1000};
  while (!stopping) {
    for (int i = 0; i < 20; ++i) {
      churn_files();
      churn_ipc();
      churn_anonymous();
    }
    nanosleep(&pause, NULL);
  }
  return 0;
}
