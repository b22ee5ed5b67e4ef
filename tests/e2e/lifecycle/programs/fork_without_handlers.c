// Children made by _Fork (no fork handlers run in them) while the census thread is busy with
// many fds and threads: every child must exit at once, and the parent's stream stay whole.
// Exit status: the number of children that did not exit within 3 s (killed), capped at 100.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void* parked(void* arg) {
  (void)arg;
  pause();
  return NULL;
}

static int wait_briefly(pid_t child) {
  for (int waited_ms = 0; waited_ms < 3000; ++waited_ms) {
    if (waitpid(child, NULL, WNOHANG) == child) return 0;
    struct timespec pause_1ms = {0, 1000 * 1000};
    nanosleep(&pause_1ms, NULL);
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return 1;
}

int main(int argc, char** argv) {
  const int children = argc > 1 ? atoi(argv[1]) : 24;
  for (int i = 0; i < 1000; ++i) open("/dev/null", O_RDONLY);
  for (int i = 0; i < 100; ++i) {
    pthread_t thread;
    pthread_create(&thread, NULL, parked, NULL);
  }
  int hung = 0;
  for (int i = 0; i < children; ++i) {
    free(malloc(1000));
    struct timespec pause_7ms = {0, 7 * 1000 * 1000};
    nanosleep(&pause_7ms, NULL);
    pid_t child = _Fork();
    if (child == 0) {
      free(malloc(10));
      exit(0);  // atexit handlers, the shim's final census among them
    }
    if (child > 0) hung += wait_briefly(child);
  }
  // Long enough for a few more censuses, which must still be accepted.
  for (int i = 0; i < 30; ++i) {
    free(malloc(1000));
    struct timespec pause_10ms = {0, 10 * 1000 * 1000};
    nanosleep(&pause_10ms, NULL);
  }
  return hung > 100 ? 100 : hung;
}
