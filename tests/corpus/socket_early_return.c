// Leak: a socket not closed on an early return. A health checker opens a socket per probe; when
// the target address fails validation (every 5th probe) it returns before close().
// Expect: drift, fds, probe_backend.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "corpus_service.h"

CORPUS_NOINLINE static int probe_backend(uint64_t request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (request % 5 == 0) return -1;  // "invalid backend": the early return leaks fd
  close(fd);
  return 0;
}

static void handle(uint64_t request) { probe_backend(request); }

int main(void) { return corpus_serve(50, handle); }
