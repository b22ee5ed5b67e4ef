// The fd classifier on real descriptors of every kind, and the fd events on the real tables.
#include "preload/events.h"
#include "preload/fd_tracker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "preload/runtime_internal.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

// Closes the descriptor at the end of the test.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

TEST(ClassifyFdTest, PipesAndSockets) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Fd read_end(fds[0]), write_end(fds[1]);
  EXPECT_EQ(ClassifyFd(read_end.get()), wire::kFdPipe);
  EXPECT_EQ(ClassifyFd(write_end.get()), wire::kFdPipe);

  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Fd unix_a(fds[0]), unix_b(fds[1]);
  EXPECT_EQ(ClassifyFd(unix_a.get()), wire::kFdSocketUnix);

  Fd inet(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(inet.get(), 0);
  EXPECT_EQ(ClassifyFd(inet.get()), wire::kFdSocketInet);
  Fd inet6(socket(AF_INET6, SOCK_DGRAM, 0));
  if (inet6.get() >= 0) {
    EXPECT_EQ(ClassifyFd(inet6.get()), wire::kFdSocketInet6);
  }
  Fd netlink(socket(AF_NETLINK, SOCK_RAW, 0));
  if (netlink.get() >= 0) {
    EXPECT_EQ(ClassifyFd(netlink.get()), wire::kFdSocketNetlink);
  }
}

TEST(ClassifyFdTest, AnonymousInodes) {
  Fd event(eventfd(0, 0));
  EXPECT_EQ(ClassifyFd(event.get()), wire::kFdEventfd);
  Fd timer(timerfd_create(CLOCK_MONOTONIC, 0));
  EXPECT_EQ(ClassifyFd(timer.get()), wire::kFdTimerfd);
  Fd epoll(epoll_create1(0));
  EXPECT_EQ(ClassifyFd(epoll.get()), wire::kFdEpoll);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  Fd signal(signalfd(-1, &mask, 0));
  EXPECT_EQ(ClassifyFd(signal.get()), wire::kFdSignalfd);
  Fd inotify(inotify_init1(0));
  EXPECT_EQ(ClassifyFd(inotify.get()), wire::kFdInotify);
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  if (pidfd.get() >= 0) {
    EXPECT_EQ(ClassifyFd(pidfd.get()), wire::kFdPidfd);
  }
  Fd memfd(memfd_create("dw-test", 0));
  ASSERT_GE(memfd.get(), 0);
  EXPECT_EQ(ClassifyFd(memfd.get()), wire::kFdMemfd);
}

TEST(ClassifyFdTest, PathsAndDevices) {
  std::string name = testing::TempDir() + "/dw_classify_XXXXXX";
  Fd file(mkstemp(name.data()));
  ASSERT_GE(file.get(), 0);
  unlink(name.c_str());
  // Unlinked, like a memfd, but a plain file.
  EXPECT_EQ(ClassifyFd(file.get()), wire::kFdFile);
  EXPECT_EQ(ClassifyPathFd(file.get()), wire::kFdFile);
  Fd directory(open("/", O_RDONLY | O_DIRECTORY));
  EXPECT_EQ(ClassifyFd(directory.get()), wire::kFdDirectory);
  EXPECT_EQ(ClassifyPathFd(directory.get()), wire::kFdDirectory);
  Fd null(open("/dev/null", O_RDONLY));
  EXPECT_EQ(ClassifyFd(null.get()), wire::kFdCharDevice);
  Fd path_only(open("/etc", O_PATH));
  EXPECT_EQ(ClassifyFd(path_only.get()), wire::kFdDirectory);
}

TEST(ClassifyFdTest, ClosedDescriptorIsUnknownAndErrnoIsKept) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  close(fds[1]);
  errno = 1234;
  EXPECT_EQ(ClassifyFd(fds[0]), wire::kFdUnknown);
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(ClassifyFd(-1), wire::kFdUnknown);
  EXPECT_EQ(errno, 1234);
}

TEST(SocketTypeTest, Families) {
  EXPECT_EQ(SocketType(AF_UNIX), wire::kFdSocketUnix);
  EXPECT_EQ(SocketType(AF_INET), wire::kFdSocketInet);
  EXPECT_EQ(SocketType(AF_INET6), wire::kFdSocketInet6);
  EXPECT_EQ(SocketType(AF_NETLINK), wire::kFdSocketNetlink);
  EXPECT_EQ(SocketType(AF_PACKET), wire::kFdSocketOther);
}

// The fd table of the process-wide runtime, mapped once for the tests below (never tracking).
HandleTracker& Table() {
  static bool initialised = g_runtime.fds.Init(1024);
  EXPECT_TRUE(initialised);
  return g_runtime.fds.handles();
}

bool Tracked(int fd, HandleTracker::Handle* handle) {
  return Table().Lookup(static_cast<uint64_t>(fd), handle);
}

TEST(ReconcileFdsTest, AdoptsUnknownDescriptorsAndReleasesClosedOnes) {
  Table();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ReconcileFds();
  HandleTracker::Handle handle;
  ASSERT_TRUE(Tracked(fds[0], &handle));
  EXPECT_EQ(handle.site, wire::kUnattributedSite);
  EXPECT_EQ(handle.state, wire::kFdPipe);
  EXPECT_NE(Table().SiteDetail(wire::kUnattributedSite) & wire::kFdPipe, 0u);
  // Closed behind the hooks' back, as a raw system call does.
  syscall(SYS_close, fds[0]);
  syscall(SYS_close, fds[1]);
  ReconcileFds();
  EXPECT_FALSE(Tracked(fds[0], &handle));
  EXPECT_FALSE(Tracked(fds[1], &handle));
  // The directory listed is not kept.
  Table().ForEach([](uint64_t fd, const HandleTracker::Handle&) {
    EXPECT_NE(fcntl(static_cast<int>(fd), F_GETFD), -1) << "closed fd " << fd << " still tracked";
  });
}

TEST(FdRangeClosingTest, ClosesOnlyWhatTheKernelCloses) {
  constexpr int kFirst = 900;
  for (int fd = kFirst; fd < kFirst + 3; ++fd) Table().Create(fd, 7, wire::kFdFile, wire::kFdFile);
  HandleTracker::Handle handle;
  OnFdRangeClosing(kFirst, kFirst + 2, CLOSE_RANGE_CLOEXEC);  // marks, does not close
  EXPECT_TRUE(Tracked(kFirst, &handle));
  OnFdRangeClosing(kFirst + 2, kFirst, 0);  // EINVAL
  EXPECT_TRUE(Tracked(kFirst, &handle));
  OnFdRangeClosing(kFirst, kFirst, 1u << 30);  // unknown flag: EINVAL
  EXPECT_TRUE(Tracked(kFirst, &handle));
  OnFdRangeClosing(kFirst + 1, ~0u, 0);  // closefrom(kFirst + 1)
  EXPECT_TRUE(Tracked(kFirst, &handle));
  EXPECT_FALSE(Tracked(kFirst + 1, &handle));
  EXPECT_FALSE(Tracked(kFirst + 2, &handle));
  OnFdRangeClosing(kFirst, kFirst, CLOSE_RANGE_UNSHARE);
  EXPECT_FALSE(Tracked(kFirst, &handle));
}

TEST(FdTypeOfTest, RecordedTypeFirst) {
  Table().Create(950, 7, wire::kFdSocketInet6, wire::kFdSocketInet6);
  EXPECT_EQ(FdTypeOf(950), wire::kFdSocketInet6);  // not open at all: the table decides
  Table().Release(950);
  EXPECT_EQ(FdTypeOf(950), wire::kFdUnknown);
}

}  // namespace
}  // namespace dw
