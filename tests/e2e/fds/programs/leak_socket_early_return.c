// Probes endpoints with a UDP socket; an endpoint that cannot be reached makes probe_endpoint
// return early without closing its socket. Runs until SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static volatile sig_atomic_t stopping;
static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

NOINLINE int probe_endpoint(int request) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(9);
  // Every fifth endpoint is an invalid (zero) port family: connect fails.
  if (request % 5 == 0)
    address.sin_family = AF_UNSPEC + 77;
  else
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) return -1;  // leaks fd
  close(fd);
  return 0;
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (int request = 0; !stopping; ++request) {
    probe_endpoint(request);
    nanosleep(&pause, NULL);
  }
  return 0;
}
