// fault_target.c: the program the fault tests run bare and under the shim. Its stdout depends only
// on its arguments, so any difference between a bare run and a run under the shim (whatever the
// collector is doing meanwhile) is the shim's doing. Timings go to stderr, never to stdout.
//
//   fault_target steady ITERATIONS SLEEP_US
//     Each iteration: replaces one of 64 live heap blocks, writes to /dev/null, sends bytes
//     through a pipe and reads them back, folds everything into a checksum; then sleeps.
//     stderr: max_iteration_us=, work_ms=, total_ms=, open_fds= (at the end), end_realtime_us=
//   fault_target nofile ROUNDS SLEEP_US
//     Each round opens /dev/null until open fails, sleeps while holding every fd (the census
//     thread then has none left), checks each fd is still its /dev/null, prints how many it
//     got and the error, and closes them all. Run it under a small `ulimit -n`.
//   fault_target fork CHILDREN SLEEP_US
//     Forks CHILDREN children one after the other, each returning through exit(); stderr:
//     fork_exit_avg_us=, fork_exit_max_us=.
//   fault_target closefrom ROUNDS SLEEP_US
//     Closes every fd from 3 up (close_range, as daemons and process spawners do); then each
//     round makes a pipe (it gets the lowest numbers back), writes 64 bytes into it, allocates
//     from a deep call stack (so the shim unwinds), reads the pipe back and prints what it got.
//     Under a limit of 128 fds or less, it also holds limit/2 + 4 files on /dev/null meanwhile
//     and checks that they still are.
// Exit code 5 when all went as planned (distinct from 0 so a lost exit code shows).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kLiveBlocks = 64, kExitCode = 5 };

static int64_t NowUs(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void SleepUs(long us) {
  if (us <= 0) return;
  struct timespec pause = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
  }
}

static uint64_t Fold(uint64_t hash, const void* data, size_t size) {
  const unsigned char* bytes = data;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001B3ull;
  return hash;
}

// One iteration of steady work; returns the checksum with this iteration folded in, or 0 on an
// unexpected failure (reported by the caller).
static uint64_t Work(long i, char** blocks, uint64_t hash) {
  size_t size = 16 + (size_t)(i * 37 % 4000);
  free(blocks[i % kLiveBlocks]);
  char* block = malloc(size);
  if (block == NULL) return 0;
  memset(block, (int)(i & 0xff), size);
  blocks[i % kLiveBlocks] = block;
  hash = Fold(hash, block, size);

  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0 || write(null_fd, block, size) != (ssize_t)size) return 0;
  close(null_fd);

  int ends[2];
  char message[32], echo[32];
  int length = snprintf(message, sizeof(message), "iteration %ld", i);
  if (pipe(ends) != 0) return 0;
  ssize_t written = write(ends[1], message, (size_t)length);
  ssize_t got = read(ends[0], echo, sizeof(echo));
  close(ends[0]);
  close(ends[1]);
  if (written != length || got != length) return 0;
  return Fold(hash, echo, (size_t)got);
}

// Open fds, not counting the one used to list them.
static int OpenFds(void) {
  DIR* directory = opendir("/proc/self/fd");
  if (directory == NULL) return -1;
  int count = 0;
  for (struct dirent* entry; (entry = readdir(directory)) != NULL;)
    count += entry->d_name[0] != '.';
  closedir(directory);
  return count - 1;
}

static int Steady(long iterations, long sleep_us) {
  char* blocks[kLiveBlocks] = {0};
  uint64_t hash = 0xCBF29CE484222325ull;
  int64_t start = NowUs(CLOCK_MONOTONIC), max_us = 0, work_us = 0;
  for (long i = 0; i < iterations; ++i) {
    int64_t before = NowUs(CLOCK_MONOTONIC);
    hash = Work(i, blocks, hash);
    int64_t took = NowUs(CLOCK_MONOTONIC) - before;
    if (hash == 0) {
      printf("iteration %ld failed: %s\n", i, strerror(errno));
      return 1;
    }
    work_us += took;
    if (took > max_us) max_us = took;
    if ((i + 1) % 1000 == 0)
      printf("iteration %ld checksum %016llx\n", i + 1, (unsigned long long)hash);
    SleepUs(sleep_us);
  }
  for (int i = 0; i < kLiveBlocks; ++i) free(blocks[i]);
  printf("done iterations=%ld checksum=%016llx\n", iterations, (unsigned long long)hash);
  fflush(stdout);
  int open_fds = OpenFds();
  fprintf(stderr,
          "max_iteration_us=%lld work_ms=%lld total_ms=%lld open_fds=%d end_realtime_us=%lld\n",
          (long long)max_us, (long long)(work_us / 1000),
          (long long)((NowUs(CLOCK_MONOTONIC) - start) / 1000), open_fds,
          (long long)NowUs(CLOCK_REALTIME));
  return kExitCode;
}

// Every fd in `fds` must still be open on /dev/null (the shim must not have closed or reused one).
static int AllIntact(const int* fds, int count) {
  for (int i = 0; i < count; ++i) {
    struct stat status;
    if (fstat(fds[i], &status) != 0 || !S_ISCHR(status.st_mode) ||
        status.st_rdev != makedev(1, 3)) {
      return 0;
    }
  }
  return 1;
}

static int Nofile(long rounds, long sleep_us) {
  struct rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur > 4096) {
    printf("RLIMIT_NOFILE is %llu: run under a small ulimit -n\n",
           (unsigned long long)limit.rlim_cur);
    return 1;
  }
  int* fds = malloc(sizeof(int) * limit.rlim_cur);
  for (long round = 0; round < rounds; ++round) {
    int count = 0;
    long fd_sum = 0;
    int fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
      fds[count++] = fd;
      fd_sum += fd;
    }
    int error = errno;
    SleepUs(sleep_us);  // census ticks happen now, with no fd left for the shim
    int intact = AllIntact(fds, count);
    for (int i = 0; i < count; ++i) close(fds[i]);
    printf("round %ld: opened %d fds (lowest %d, sum of numbers %ld), then %s; %s\n", round, count,
           count > 0 ? fds[0] : -1, fd_sum, strerrorname_np(error),
           intact ? "all intact" : "SOME CHANGED");
    fflush(stdout);
    SleepUs(sleep_us);  // and now with fds free
  }
  free(fds);
  fprintf(stderr, "end_realtime_us=%lld\n", (long long)NowUs(CLOCK_REALTIME));
  return kExitCode;
}

static int Forks(long children, long sleep_us) {
  int64_t total_us = 0, max_us = 0;
  for (long i = 0; i < children; ++i) {
    int64_t before = NowUs(CLOCK_MONOTONIC);
    pid_t child = fork();
    if (child < 0) {
      printf("fork failed: %s\n", strerror(errno));
      return 1;
    }
    if (child == 0) {
      free(malloc(100));  // a child that does something, then leaves through exit()
      exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("child %ld did not exit 0 (status %#x)\n", i, status);
      return 1;
    }
    int64_t took = NowUs(CLOCK_MONOTONIC) - before;
    total_us += took;
    if (took > max_us) max_us = took;
    SleepUs(sleep_us);
  }
  printf("forked %ld children\n", children);
  fflush(stdout);
  fprintf(stderr, "fork_exit_avg_us=%lld fork_exit_max_us=%lld end_realtime_us=%lld\n",
          (long long)(children > 0 ? total_us / children : 0), (long long)max_us,
          (long long)NowUs(CLOCK_REALTIME));
  return kExitCode;
}

// Allocates and frees from `depth` frames down, so that each allocation is unwound through all.
static void __attribute__((noinline)) AllocateDeep(int depth, void** blocks, int count) {
  if (depth > 0) {
    AllocateDeep(depth - 1, blocks, count);
    __asm__ volatile("" ::: "memory");  // not a tail call: the frames stay
    return;
  }
  for (int i = 0; i < count; ++i) {
    free(blocks[i]);
    blocks[i] = malloc(16 + (size_t)(i % 100));
  }
}

static int Closefrom(long rounds, long sleep_us) {
  static void* blocks[256];
  // Files held across each round, up to half the fd limit: they take the numbers the shim
  // would move its own descriptors to, had it any left after the close_range.
  struct rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  int held_count = limit.rlim_cur <= 128 ? (int)limit.rlim_cur / 2 + 4 : 0;
  int held[68];
  close_range(3, ~0U, 0);
  for (long round = 0; round < rounds; ++round) {
    for (int i = 0; i < held_count; ++i) held[i] = open("/dev/null", O_RDONLY);
    int ends[2];
    if (pipe(ends) != 0) {
      printf("round %ld: pipe failed: %s\n", round, strerrorname_np(errno));
      return 1;
    }
    char message[64], echo[65] = {0};
    for (size_t i = 0; i < sizeof(message); ++i) message[i] = (char)('a' + (round + (long)i) % 26);
    ssize_t written = write(ends[1], message, sizeof(message));
    if (written != (ssize_t)sizeof(message)) {
      printf("round %ld: write to fd %d gave %zd: %s\n", round, ends[1], written,
             strerrorname_np(errno));
      return 1;
    }
    AllocateDeep(10 + (int)(round % 7) * 5, blocks, 256);  // other stacks, other addresses
    close(ends[1]);
    ssize_t got = 0, more;
    while ((more = read(ends[0], echo + got, sizeof(message) - (size_t)got)) > 0) got += more;
    close(ends[0]);
    int intact = AllIntact(held, held_count);
    for (int i = 0; i < held_count; ++i) close(held[i]);
    printf("round %ld: %d files held%s, pipe at %d,%d, read back %zd bytes: %s\n", round,
           held_count, intact ? "" : " (SOME CHANGED)", ends[0], ends[1], got, echo);
    fflush(stdout);
    SleepUs(sleep_us);
  }
  for (int i = 0; i < 256; ++i) free(blocks[i]);
  fprintf(stderr, "end_realtime_us=%lld\n", (long long)NowUs(CLOCK_REALTIME));
  return kExitCode;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fault_target steady|nofile|fork|closefrom COUNT SLEEP_US\n");
    return 2;
  }
  long count = atol(argv[2]), sleep_us = atol(argv[3]);
  if (strcmp(argv[1], "steady") == 0) return Steady(count, sleep_us);
  if (strcmp(argv[1], "nofile") == 0) return Nofile(count, sleep_us);
  if (strcmp(argv[1], "fork") == 0) return Forks(count, sleep_us);
  if (strcmp(argv[1], "closefrom") == 0) return Closefrom(count, sleep_us);
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
