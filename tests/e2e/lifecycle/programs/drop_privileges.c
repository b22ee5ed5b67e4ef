// Drops root the way daemons and util-linux's setpriv do, then keeps working. glibc applies
// setresuid, setresgid and setgroups to every thread and aborts the process unless every thread
// succeeds alike, while capset and prctl's capability options act on the calling thread only.
// Usage: drop_privileges capset | securebits
//   capset      keeps its capabilities across the change of user (PR_SET_KEEPCAPS), waits
//               0.3 s (the census thread, if it stepped aside, is back by then), changes user,
//               raises CAP_SETGID again in its own thread (capset), then changes group at once
//   securebits  keeps every capability across the change of user (SECBIT_NO_SETUID_FIXUP), then
//               changes user and group at once
// Either way it then clears its groups and allocates for 1.5 s, so that censuses show the census
// thread back. Run as root. Exit 0: done; 2: a step failed (errno printed); 64: usage.
#define _GNU_SOURCE
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int capset(cap_user_header_t header, const cap_user_data_t data);  // glibc's; libcap declares it

static int Fail(const char* step) {
  perror(step);
  return 2;
}

// Allocates through `milliseconds`: hooks run, so a census thread that is due starts.
static void Work(int milliseconds) {
  for (int i = 0; i < milliseconds / 10; ++i) {
    free(malloc(64));
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

static int DropWithCapset(void) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Fail("prctl");
  Work(300);
  if (setresuid(1, 1, 1) != 0) return Fail("setresuid");
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = 1u << CAP_SETGID;
  if (capset(&header, data) != 0) return Fail("capset");
  if (setresgid(1, 1, 1) != 0) return Fail("setresgid");
  return 0;
}

static int DropWithSecurebits(void) {
  if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0) return Fail("prctl");
  if (setresuid(1, 1, 1) != 0) return Fail("setresuid");
  if (setresgid(1, 1, 1) != 0) return Fail("setresgid");
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) return 64;
  int result = 64;
  if (strcmp(argv[1], "capset") == 0) result = DropWithCapset();
  if (strcmp(argv[1], "securebits") == 0) result = DropWithSecurebits();
  if (result != 0) return result;
  if (setgroups(0, NULL) != 0) return Fail("setgroups");
  Work(1500);
  return 0;
}
