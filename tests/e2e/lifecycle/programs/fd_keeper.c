// A library that keeps 50 descriptors open for the program's life and closes them in its
// destructor, as a logging or database client library may.
#include <fcntl.h>
#include <unistd.h>

static int g_fds[50];
static int g_open;

int fd_keeper_open(void) {
  for (; g_open < 50; ++g_open) g_fds[g_open] = open("/dev/null", O_RDONLY);
  return g_open;
}

__attribute__((destructor)) static void close_descriptors(void) {
  for (int i = 0; i < g_open; ++i) close(g_fds[i]);
}
