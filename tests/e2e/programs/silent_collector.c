// A hostile collector: accepts every connection on the given Unix socket and never reads.
// The shim must neither block nor slow the target when its census cannot be delivered.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: silent_collector SOCKET SECONDS\n");
    return 2;
  }
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
  unlink(argv[1]);
  if (bind(listener, (struct sockaddr*)&address, sizeof(address)) != 0 ||
      listen(listener, 16) != 0) {
    perror("silent_collector");
    return 2;
  }
  // Accept (so the shim's connect succeeds and its sends fill the buffer), then ignore.
  alarm((unsigned)atoi(argv[2]));
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    (void)connection;
  }
}
