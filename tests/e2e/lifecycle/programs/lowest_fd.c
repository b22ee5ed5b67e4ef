// A single-threaded program may count on POSIX's lowest-free rule: close a descriptor, open
// another, and get the same number back. Exit status: how often it did not (capped at 100).
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 2.0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int fd = open("/dev/null", O_RDONLY);
  long mismatches = 0;
  do {
    for (int i = 0; i < 1000; ++i) {
      close(fd);
      int again = open("/dev/null", O_RDONLY);
      if (again != fd) ++mismatches;
      fd = again;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
  return mismatches > 100 ? 100 : (int)mismatches;
}
