// Every interposed fd function. use_<name> creates with <name> and releases everything it
// created; leak_<name> creates with <name> and keeps exactly one descriptor open until exit.
// Also: dup2/dup3 onto an open number, CLOSE_RANGE_CLOEXEC, fdopen, freopen, and failures
// (never recorded). Exits 1 if a call fails that must not.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

// glibc 2.36's sys/pidfd.h has no extern "C" issue in C; declared here to avoid needing it.
int pidfd_open(pid_t pid, unsigned int flags);
int pidfd_getfd(int pidfd, int target_fd, unsigned int flags);
// The _FORTIFY_SOURCE entry points, called directly.
int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int directory, const char* path, int flags);
int __openat64_2(int directory, const char* path, int flags);

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

static int failures;
static char temp_dir[64] = "/tmp/dw_fds_XXXXXX";

static int check(int fd, const char* what) {
  if (fd < 0) {
    fprintf(stderr, "%s failed: %s\n", what, strerror(errno));
    ++failures;
  }
  return fd;
}
static void* check_ptr(void* p, const char* what) {
  if (p == NULL) {
    fprintf(stderr, "%s failed: %s\n", what, strerror(errno));
    ++failures;
  }
  return p;
}
static void release(int fd) {
  if (fd >= 0) close(fd);
}
static const char* temp_path(const char* name) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", temp_dir, name);
  return path;
}
static char* temp_template(const char* suffix) {
  static char name[128];
  snprintf(name, sizeof name, "%s/tmpXXXXXX%s", temp_dir, suffix);
  return name;
}

// ---- Open family ----
NOINLINE int make_open(void) { return check(open("/etc/passwd", O_RDONLY), "open"); }
NOINLINE int make_open64(void) { return check(open64("/etc/passwd", O_RDONLY), "open64"); }
NOINLINE int make_openat(void) { return check(openat(AT_FDCWD, "/", O_RDONLY), "openat"); }
NOINLINE int make_openat64(void) {
  return check(openat64(AT_FDCWD, temp_path("f"), O_RDWR | O_CREAT, 0600), "openat64");
}
NOINLINE int make_creat(void) { return check(creat(temp_path("c"), 0600), "creat"); }
NOINLINE int make_creat64(void) { return check(creat64(temp_path("c64"), 0600), "creat64"); }
NOINLINE int make_open_2(void) { return check(__open_2("/etc/passwd", O_RDONLY), "__open_2"); }
NOINLINE int make_open64_2(void) { return check(__open64_2("/dev/null", O_RDONLY), "__open64_2"); }
NOINLINE int make_openat_2(void) {
  return check(__openat_2(AT_FDCWD, "/etc/passwd", O_RDONLY), "__openat_2");
}
NOINLINE int make_openat64_2(void) {
  return check(__openat64_2(AT_FDCWD, "/etc/passwd", O_RDONLY), "__openat64_2");
}
NOINLINE int make_mkstemp(void) { return check(mkstemp(temp_template("")), "mkstemp"); }
NOINLINE int make_mkstemp64(void) { return check(mkstemp64(temp_template("")), "mkstemp64"); }
NOINLINE int make_mkostemp(void) {
  return check(mkostemp(temp_template(""), O_CLOEXEC), "mkostemp");
}
NOINLINE int make_mkostemp64(void) {
  return check(mkostemp64(temp_template(""), O_CLOEXEC), "mkostemp64");
}
NOINLINE int make_mkstemps(void) { return check(mkstemps(temp_template(".x"), 2), "mkstemps"); }
NOINLINE int make_mkstemps64(void) {
  return check(mkstemps64(temp_template(".x"), 2), "mkstemps64");
}
NOINLINE int make_mkostemps(void) {
  return check(mkostemps(temp_template(".x"), 2, O_CLOEXEC), "mkostemps");
}
NOINLINE int make_mkostemps64(void) {
  return check(mkostemps64(temp_template(".x"), 2, O_CLOEXEC), "mkostemps64");
}
NOINLINE int make_shm_open(void) {
  static int serial;
  char name[64];
  snprintf(name, sizeof name, "/dw_fds_%d_%d", (int)getpid(), serial++);
  int fd = check(shm_open(name, O_RDWR | O_CREAT, 0600), "shm_open");
  shm_unlink(name);
  return fd;
}
NOINLINE int make_posix_openpt(void) {
  return check(posix_openpt(O_RDWR | O_NOCTTY), "posix_openpt");
}
NOINLINE int make_getpt(void) { return check(getpt(), "getpt"); }

// ---- Sockets and pipes ----
NOINLINE int make_socket(void) { return check(socket(AF_INET, SOCK_DGRAM, 0), "socket"); }
NOINLINE int make_socketpair(int fds[2]) {
  return check(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), "socketpair");
}
NOINLINE int make_pipe(int fds[2]) { return check(pipe(fds), "pipe"); }
NOINLINE int make_pipe2(int fds[2]) { return check(pipe2(fds, O_CLOEXEC), "pipe2"); }

static int listener = -1;
static struct sockaddr_in listener_address;
static void start_listener(void) {
  listener = socket(AF_INET, SOCK_STREAM, 0);
  listener_address.sin_family = AF_INET;
  listener_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof listener_address;
  if (bind(listener, (struct sockaddr*)&listener_address, sizeof listener_address) != 0 ||
      listen(listener, 16) != 0 ||
      getsockname(listener, (struct sockaddr*)&listener_address, &length) != 0) {
    check(-1, "listener");
  }
}
// A pending connection for accept to take; the client end is closed by the caller.
static int connect_client(void) {
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, (struct sockaddr*)&listener_address, sizeof listener_address) != 0) {
    check(-1, "connect");
  }
  return client;
}
NOINLINE int make_accept(void) { return check(accept(listener, NULL, NULL), "accept"); }
NOINLINE int make_accept4(void) {
  return check(accept4(listener, NULL, NULL, SOCK_CLOEXEC), "accept4");
}

// Sends `fd` over a socket pair with SCM_RIGHTS; the receiving end is returned in *receiver.
static void send_fd(int fd, int pair[2]) {
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) != 0) check(-1, "socketpair for SCM_RIGHTS");
  char byte = 'x';
  struct iovec data = {&byte, 1};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr message = {0};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control.buffer;
  message.msg_controllen = sizeof control.buffer;
  struct cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(header), &fd, sizeof fd);
  if (sendmsg(pair[0], &message, 0) != 1) check(-1, "sendmsg");
}
static int received_fd(struct msghdr* message) {
  struct cmsghdr* header = CMSG_FIRSTHDR(message);
  if (header == NULL || header->cmsg_type != SCM_RIGHTS) return check(-1, "no SCM_RIGHTS");
  int fd;
  memcpy(&fd, CMSG_DATA(header), sizeof fd);
  return fd;
}
NOINLINE int make_recvmsg(int pair[2]) {
  char byte;
  struct iovec data = {&byte, 1};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr message = {0};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control.buffer;
  message.msg_controllen = sizeof control.buffer;
  if (recvmsg(pair[1], &message, 0) != 1) return check(-1, "recvmsg");
  return received_fd(&message);
}
NOINLINE int make_recvmmsg(int pair[2]) {
  char byte;
  struct iovec data = {&byte, 1};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct mmsghdr messages[1];
  memset(messages, 0, sizeof messages);
  messages[0].msg_hdr.msg_iov = &data;
  messages[0].msg_hdr.msg_iovlen = 1;
  messages[0].msg_hdr.msg_control = control.buffer;
  messages[0].msg_hdr.msg_controllen = sizeof control.buffer;
  if (recvmmsg(pair[1], messages, 1, 0, NULL) != 1) return check(-1, "recvmmsg");
  return received_fd(&messages[0].msg_hdr);
}
NOINLINE int make_pidfd_open(void) { return check(pidfd_open(getpid(), 0), "pidfd_open"); }
NOINLINE int make_pidfd_getfd(int pidfd, int target) {
  return check(pidfd_getfd(pidfd, target, 0), "pidfd_getfd");
}

// ---- Duplication ----
NOINLINE int make_dup(int fd) { return check(dup(fd), "dup"); }
NOINLINE int make_dup2(int fd, int target) { return check(dup2(fd, target), "dup2"); }
NOINLINE int make_dup3(int fd, int target) { return check(dup3(fd, target, O_CLOEXEC), "dup3"); }
NOINLINE int make_fcntl_dupfd(int fd) { return check(fcntl(fd, F_DUPFD, 0), "fcntl F_DUPFD"); }
NOINLINE int make_fcntl_dupfd_cloexec(int fd) {
  return check(fcntl(fd, F_DUPFD_CLOEXEC, 0), "fcntl F_DUPFD_CLOEXEC");
}
NOINLINE int make_fcntl64(int fd) { return check(fcntl64(fd, F_DUPFD, 0), "fcntl64"); }

// ---- Anonymous inodes ----
NOINLINE int make_epoll_create(void) { return check(epoll_create(4), "epoll_create"); }
NOINLINE int make_epoll_create1(void) { return check(epoll_create1(0), "epoll_create1"); }
NOINLINE int make_eventfd(void) { return check(eventfd(0, 0), "eventfd"); }
NOINLINE int make_signalfd(void) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  int fd = check(signalfd(-1, &mask, 0), "signalfd");
  // Changing the mask of an existing signalfd creates nothing.
  sigaddset(&mask, SIGUSR1);
  if (signalfd(fd, &mask, 0) != fd) check(-1, "signalfd update");
  return fd;
}
NOINLINE int make_timerfd_create(void) {
  return check(timerfd_create(CLOCK_MONOTONIC, 0), "timerfd_create");
}
NOINLINE int make_inotify_init(void) { return check(inotify_init(), "inotify_init"); }
NOINLINE int make_inotify_init1(void) { return check(inotify_init1(0), "inotify_init1"); }
// Needs CAP_SYS_ADMIN: a failure is reported, not fatal (the test then skips it).
NOINLINE int make_fanotify_init(void) { return fanotify_init(FAN_CLASS_NOTIF, O_RDONLY); }
NOINLINE int make_memfd_create(void) { return check(memfd_create("dw", 0), "memfd_create"); }

// ---- Streams ----
NOINLINE FILE* make_fopen(void) { return check_ptr(fopen("/etc/passwd", "r"), "fopen"); }
NOINLINE FILE* make_fopen64(void) { return check_ptr(fopen64("/etc/passwd", "r"), "fopen64"); }
NOINLINE FILE* make_fdopen(int fd) { return check_ptr(fdopen(fd, "r"), "fdopen"); }
NOINLINE FILE* make_freopen(FILE* stream) {
  return check_ptr(freopen("/etc/hostname", "r", stream), "freopen");
}
NOINLINE FILE* make_freopen64(FILE* stream) {
  return check_ptr(freopen64("/etc/hostname", "r", stream), "freopen64");
}
NOINLINE FILE* make_tmpfile(void) { return check_ptr(tmpfile(), "tmpfile"); }
NOINLINE FILE* make_tmpfile64(void) { return check_ptr(tmpfile64(), "tmpfile64"); }
NOINLINE FILE* make_popen(void) { return check_ptr(popen("exit 0", "r"), "popen"); }
NOINLINE DIR* make_opendir(void) { return check_ptr(opendir("/"), "opendir"); }
NOINLINE DIR* make_fdopendir(int fd) { return check_ptr(fdopendir(fd), "fdopendir"); }

// ---- The users: each creates with its make_ function and releases ----
#define USE_AND_CLOSE(name)                             \
  NOINLINE void use_##name(void) {                      \
    for (int i = 0; i < 2; ++i) release(make_##name()); \
  }                                                     \
  NOINLINE void leak_##name(void) { (void)make_##name(); }
USE_AND_CLOSE(open)
USE_AND_CLOSE(open64)
USE_AND_CLOSE(openat)
USE_AND_CLOSE(openat64)
USE_AND_CLOSE(creat)
USE_AND_CLOSE(creat64)
USE_AND_CLOSE(open_2)
USE_AND_CLOSE(open64_2)
USE_AND_CLOSE(openat_2)
USE_AND_CLOSE(openat64_2)
USE_AND_CLOSE(mkstemp)
USE_AND_CLOSE(mkstemp64)
USE_AND_CLOSE(mkostemp)
USE_AND_CLOSE(mkostemp64)
USE_AND_CLOSE(mkstemps)
USE_AND_CLOSE(mkstemps64)
USE_AND_CLOSE(mkostemps)
USE_AND_CLOSE(mkostemps64)
USE_AND_CLOSE(shm_open)
USE_AND_CLOSE(posix_openpt)
USE_AND_CLOSE(getpt)
USE_AND_CLOSE(socket)
USE_AND_CLOSE(pidfd_open)
USE_AND_CLOSE(epoll_create)
USE_AND_CLOSE(epoll_create1)
USE_AND_CLOSE(eventfd)
USE_AND_CLOSE(signalfd)
USE_AND_CLOSE(timerfd_create)
USE_AND_CLOSE(inotify_init)
USE_AND_CLOSE(inotify_init1)
USE_AND_CLOSE(fanotify_init)
USE_AND_CLOSE(memfd_create)

NOINLINE void use_socketpair(void) {
  int fds[2];
  if (make_socketpair(fds) == 0) release(fds[0]), release(fds[1]);
}
NOINLINE void leak_socketpair(void) {  // one end kept
  int fds[2];
  if (make_socketpair(fds) == 0) release(fds[1]);
}
NOINLINE void use_pipe(void) {
  int fds[2];
  if (make_pipe(fds) == 0) release(fds[0]), release(fds[1]);
}
NOINLINE void leak_pipe(void) {
  int fds[2];
  if (make_pipe(fds) == 0) release(fds[1]);
}
NOINLINE void use_pipe2(void) {
  int fds[2];
  if (make_pipe2(fds) == 0) release(fds[0]), release(fds[1]);
}
NOINLINE void leak_pipe2(void) {
  int fds[2];
  if (make_pipe2(fds) == 0) release(fds[1]);
}
NOINLINE void use_accept(void) {
  int client = connect_client();
  release(make_accept());
  release(client);
}
NOINLINE void leak_accept(void) {
  int client = connect_client();
  (void)make_accept();
  release(client);
}
NOINLINE void use_accept4(void) {
  int client = connect_client();
  release(make_accept4());
  release(client);
}
NOINLINE void leak_accept4(void) {
  int client = connect_client();
  (void)make_accept4();
  release(client);
}
// The descriptor passed is an eventfd; the received copy is attributed to the receiver.
static void with_passed_eventfd(int (*receive)(int pair[2]), int keep) {
  int pair[2];
  int original = eventfd(0, 0);
  send_fd(original, pair);
  release(original);
  int received = receive(pair);
  release(pair[0]);
  release(pair[1]);
  if (!keep) release(received);
}
NOINLINE void use_recvmsg(void) { with_passed_eventfd(make_recvmsg, 0); }
NOINLINE void leak_recvmsg(void) { with_passed_eventfd(make_recvmsg, 1); }
NOINLINE void use_recvmmsg(void) { with_passed_eventfd(make_recvmmsg, 0); }
NOINLINE void leak_recvmmsg(void) { with_passed_eventfd(make_recvmmsg, 1); }
// pidfd_getfd copies a descriptor of a process (here, this one): a pipe.
static void with_pidfd_getfd(int keep) {
  int fds[2];
  if (pipe(fds) != 0) return;
  int pidfd = pidfd_open(getpid(), 0);
  int copy = make_pidfd_getfd(pidfd, fds[0]);
  release(pidfd);
  release(fds[0]);
  release(fds[1]);
  if (!keep) release(copy);
}
NOINLINE void use_pidfd_getfd(void) { with_pidfd_getfd(0); }
NOINLINE void leak_pidfd_getfd(void) { with_pidfd_getfd(1); }

// The dup family copies a socket; the original is closed where it was made.
NOINLINE int dup_source(void) { return socket(AF_UNIX, SOCK_DGRAM, 0); }
#define USE_DUP(name)               \
  NOINLINE void use_##name(void) {  \
    int source = dup_source();      \
    release(make_##name(source));   \
    release(source);                \
  }                                 \
  NOINLINE void leak_##name(void) { \
    int source = dup_source();      \
    (void)make_##name(source);      \
    release(source);                \
  }
USE_DUP(dup)
USE_DUP(fcntl_dupfd)
USE_DUP(fcntl_dupfd_cloexec)
USE_DUP(fcntl64)
// dup2 and dup3 onto an open number: the target, made at dup_target, is closed by the call.
NOINLINE int dup_target(void) { return open("/dev/null", O_RDONLY); }
NOINLINE void use_dup2(void) {
  int source = dup_source(), target = dup_target();
  release(make_dup2(source, target));
  release(source);
  if (dup2(source, source) != -1) check(-1, "dup2 of a closed fd onto itself");
}
NOINLINE void leak_dup2(void) {
  int source = dup_source(), target = dup_target();
  (void)make_dup2(source, target);
  release(source);
}
NOINLINE void use_dup3(void) {
  int source = dup_source(), target = dup_target();
  release(make_dup3(source, target));
  release(source);
}
NOINLINE void leak_dup3(void) {
  int source = dup_source(), target = dup_target();
  (void)make_dup3(source, target);
  release(source);
}

// Streams.
NOINLINE void use_fopen(void) { fclose(make_fopen()); }
NOINLINE void leak_fopen(void) { (void)make_fopen(); }
NOINLINE void use_fopen64(void) { fclose(make_fopen64()); }
NOINLINE void leak_fopen64(void) { (void)make_fopen64(); }
// fdopen takes over a descriptor the program made with pipe (fdopen_source): the leak stays
// there; fclose releases it.
NOINLINE int fdopen_source(int fds[2]) { return pipe(fds); }
NOINLINE void use_fdopen(void) {
  int fds[2];
  if (fdopen_source(fds) != 0) return;
  fclose(make_fdopen(fds[0]));
  release(fds[1]);
}
NOINLINE void leak_fdopen(void) {
  int fds[2];
  if (fdopen_source(fds) != 0) return;
  (void)make_fdopen(fds[0]);
  release(fds[1]);
}
// freopen closes the descriptor of freopen_source's fopen and opens its own.
NOINLINE FILE* freopen_source(void) { return fopen("/etc/passwd", "r"); }
NOINLINE void use_freopen(void) { fclose(make_freopen(freopen_source())); }
NOINLINE void leak_freopen(void) { (void)make_freopen(freopen_source()); }
NOINLINE void use_freopen64(void) { fclose(make_freopen64(freopen_source())); }
NOINLINE void leak_freopen64(void) { (void)make_freopen64(freopen_source()); }
NOINLINE void use_tmpfile(void) { fclose(make_tmpfile()); }
NOINLINE void leak_tmpfile(void) { (void)make_tmpfile(); }
NOINLINE void use_tmpfile64(void) { fclose(make_tmpfile64()); }
NOINLINE void leak_tmpfile64(void) { (void)make_tmpfile64(); }
NOINLINE void use_popen(void) { pclose(make_popen()); }
NOINLINE void leak_popen(void) { (void)make_popen(); }
NOINLINE void use_opendir(void) { closedir(make_opendir()); }
NOINLINE void leak_opendir(void) { (void)make_opendir(); }
NOINLINE int fdopendir_source(void) { return open("/", O_RDONLY | O_DIRECTORY); }
NOINLINE void use_fdopendir(void) { closedir(make_fdopendir(fdopendir_source())); }
NOINLINE void leak_fdopendir(void) { (void)make_fdopendir(fdopendir_source()); }

// ---- Releases other than close ----
// close_range and closefrom close numbers near the fd limit, above the census socket (which
// sits 64 below the limit), so nothing else of the process is touched.
static int high_fd(int from_top) {
  struct rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  return (int)limit.rlim_cur - from_top;
}
NOINLINE int make_high(int number) {
  int original = dup_target();
  int fd = dup2(original, number);
  release(original);
  return fd;
}
NOINLINE void use_close_range(void) {
  const int first = high_fd(20);
  for (int i = 0; i < 3; ++i) {
    int fd = make_high(first + i);
    check(fd, "dup2 to a high fd");
  }
  check(close_range(first, first + 2, 0), "close_range");
}
NOINLINE void leak_close_range_cloexec(void) {  // marks close-on-exec: nothing is released
  const int first = high_fd(10);
  check(make_high(first), "dup2 to a high fd");
  check(close_range(first, first, CLOSE_RANGE_CLOEXEC), "close_range CLOEXEC");
}
NOINLINE void use_closefrom(void) {
  const int first = high_fd(5);
  for (int i = 0; i < 3; ++i) check(make_high(first + i), "dup2 to a high fd");
  closefrom(first);
}

// Failures are never recorded.
NOINLINE void fail_everything(void) {
  if (open("/nonexistent/dw", O_RDONLY) != -1) check(-1, "open of a missing file succeeded");
  if (fopen("/nonexistent/dw", "r") != NULL) check(-1, "fopen of a missing file succeeded");
  if (opendir("/nonexistent/dw") != NULL) check(-1, "opendir of a missing dir succeeded");
  if (dup(-1) != -1) check(-1, "dup(-1) succeeded");
  if (socket(-1, SOCK_STREAM, 0) != -1) check(-1, "socket(-1) succeeded");
  errno = 0;
  if (close(-1) != -1 || errno != EBADF) check(-1, "close(-1) errno");
  if (close_range(5, 4, 0) != -1 || errno != EINVAL) check(-1, "close_range inverted errno");
}

int main(void) {
  if (mkdtemp(temp_dir) == NULL) return 1;
  start_listener();
  void (*const users[])(void) = {
      use_open,
      use_open64,
      use_openat,
      use_openat64,
      use_creat,
      use_creat64,
      use_open_2,
      use_open64_2,
      use_openat_2,
      use_openat64_2,
      use_mkstemp,
      use_mkstemp64,
      use_mkostemp,
      use_mkostemp64,
      use_mkstemps,
      use_mkstemps64,
      use_mkostemps,
      use_mkostemps64,
      use_shm_open,
      use_posix_openpt,
      use_getpt,
      use_socket,
      use_pidfd_open,
      use_epoll_create,
      use_epoll_create1,
      use_eventfd,
      use_signalfd,
      use_timerfd_create,
      use_inotify_init,
      use_inotify_init1,
      use_fanotify_init,
      use_memfd_create,
      use_socketpair,
      use_pipe,
      use_pipe2,
      use_accept,
      use_accept4,
      use_recvmsg,
      use_recvmmsg,
      use_pidfd_getfd,
      use_dup,
      use_fcntl_dupfd,
      use_fcntl_dupfd_cloexec,
      use_fcntl64,
      use_dup2,
      use_dup3,
      use_fopen,
      use_fopen64,
      use_fdopen,
      use_freopen,
      use_freopen64,
      use_tmpfile,
      use_tmpfile64,
      use_popen,
      use_opendir,
      use_fdopendir,
      use_close_range,
      use_closefrom,
      fail_everything,
  };
  void (*const leakers[])(void) = {
      leak_open,
      leak_open64,
      leak_openat,
      leak_openat64,
      leak_creat,
      leak_creat64,
      leak_open_2,
      leak_open64_2,
      leak_openat_2,
      leak_openat64_2,
      leak_mkstemp,
      leak_mkstemp64,
      leak_mkostemp,
      leak_mkostemp64,
      leak_mkstemps,
      leak_mkstemps64,
      leak_mkostemps,
      leak_mkostemps64,
      leak_shm_open,
      leak_posix_openpt,
      leak_getpt,
      leak_socket,
      leak_pidfd_open,
      leak_epoll_create,
      leak_epoll_create1,
      leak_eventfd,
      leak_signalfd,
      leak_timerfd_create,
      leak_inotify_init,
      leak_inotify_init1,
      leak_fanotify_init,
      leak_memfd_create,
      leak_socketpair,
      leak_pipe,
      leak_pipe2,
      leak_accept,
      leak_accept4,
      leak_recvmsg,
      leak_recvmmsg,
      leak_pidfd_getfd,
      leak_dup,
      leak_fcntl_dupfd,
      leak_fcntl_dupfd_cloexec,
      leak_fcntl64,
      leak_dup2,
      leak_dup3,
      leak_fopen,
      leak_fopen64,
      leak_fdopen,
      leak_freopen,
      leak_freopen64,
      leak_tmpfile,
      leak_tmpfile64,
      leak_popen,
      leak_opendir,
      leak_fdopendir,
      leak_close_range_cloexec,
  };
  for (size_t i = 0; i < sizeof users / sizeof users[0]; ++i) users[i]();
  for (size_t i = 0; i < sizeof leakers / sizeof leakers[0]; ++i) leakers[i]();
  // Let a census or two pass with everything in place (the final census comes at exit too).
  usleep(300 * 1000);
  char command[128];
  snprintf(command, sizeof command, "rm -rf %s", temp_dir);
  if (system(command) != 0) ++failures;
  return failures == 0 ? 0 : 1;
}
