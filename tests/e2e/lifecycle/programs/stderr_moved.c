// Points its stderr at a file of its own at once, as daemons do with a log, then works for a
// while. Nothing of the shim's may land in that file. Exit 1 if it did.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int log = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (log < 0 || dup2(log, 2) != 2) return 2;
  for (int i = 0; i < 40; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  struct stat status;
  return fstat(2, &status) == 0 && status.st_size == 0 ? 0 : 1;
}
