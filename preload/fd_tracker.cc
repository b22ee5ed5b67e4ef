#include "preload/fd_tracker.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "preload/events.h"
#include "preload/runtime_internal.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

// Every entry point here may run in a hook, after the real call set errno for the caller.
using os::ErrnoKeeper;

bool StartsWith(const char* text, const char* prefix) {
  return strncmp(text, prefix, strlen(prefix)) == 0;
}

// Anonymous inodes have no file type in st_mode; only the /proc link names them
// ("anon_inode:[eventfd]"). Unlinked regular files may be memfds ("/memfd:name (deleted)").
uint32_t ClassifyByLink(int fd, uint32_t otherwise) {
  char link[64];
  if (os::ReadProcessFdLink(fd, link, sizeof(link)) <= 0) return otherwise;
  if (StartsWith(link, "/memfd:")) return wire::kFdMemfd;
  if (StartsWith(link, "pidfd:")) return wire::kFdPidfd;  // pidfs on newer kernels
  if (!StartsWith(link, "anon_inode:")) return otherwise;
  const char* name = link + strlen("anon_inode:");
  struct Known {
    const char* name;
    uint32_t type;
  };
  static constexpr Known kKnown[] = {
      {"[eventfd]", wire::kFdEventfd},   {"[timerfd]", wire::kFdTimerfd},
      {"[signalfd]", wire::kFdSignalfd}, {"[eventpoll]", wire::kFdEpoll},
      {"inotify", wire::kFdInotify},     {"[fanotify]", wire::kFdFanotify},
      {"[pidfd]", wire::kFdPidfd},
  };
  for (const Known& known : kKnown) {
    if (strcmp(name, known.name) == 0) return known.type;
  }
  return wire::kFdOtherAnon;
}

// The socket's address family. On the census thread's private table the program's descriptor is
// borrowed for the question (pidfd_getfd), since only a descriptor can be asked.
uint32_t ClassifySocket(int fd) {
  const bool borrowed = os::HasPrivateFdTable();
  const int asked = borrowed ? os::BorrowProcessFd(fd) : fd;
  int domain = 0;
  const bool known = asked >= 0 && os::SocketDomain(asked, &domain);
  if (borrowed && asked >= 0) os::Close(asked);
  return known ? SocketType(domain) : wire::kFdSocketOther;
}

uint32_t Classify(int fd, bool opened_from_path) {
  struct stat status;
  // From a private table the program's descriptor is seen through /proc/self/fd.
  const bool found =
      os::HasPrivateFdTable() ? os::StatProcessFd(fd, &status) : os::Fstat(fd, &status);
  if (!found) return wire::kFdUnknown;
  switch (status.st_mode & S_IFMT) {
    case S_IFREG:
      // Only an unlinked file can be a memfd; a path never names one.
      if (opened_from_path || status.st_nlink != 0) return wire::kFdFile;
      return ClassifyByLink(fd, wire::kFdFile);
    case S_IFDIR:
      return wire::kFdDirectory;
    case S_IFCHR:
      return wire::kFdCharDevice;
    case S_IFBLK:
      return wire::kFdBlockDevice;
    case S_IFIFO:
      return wire::kFdPipe;
    case S_IFSOCK:
      return ClassifySocket(fd);
    case 0:
      return ClassifyByLink(fd, wire::kFdOtherAnon);
    default:
      return wire::kFdFile;  // an O_PATH descriptor of a symbolic link
  }
}

HandleTracker& Handles() { return g_runtime.fds.handles(); }

void Record(int fd, uint32_t site, uint32_t fd_type) {
  Handles().Create(static_cast<uint64_t>(fd), site, fd_type, fd_type);
}

// A fork child's census thread starts on the first hook event after a delay (see
// Reporter::StartIfDue); a child that only works with descriptors must start it too.
void StartCensusIfDue() {
  if (g_runtime.reporter.start_pending()) g_runtime.reporter.StartIfDue();
}

bool IsOpen(int fd) {
  if (os::HasPrivateFdTable()) return os::ProcessFdIsOpen(fd);
  return os::FdIsOpenHere(fd);
}

// Releases every tracked descriptor in [first, last] for which should_release(fd) holds.
template <typename Filter>
void ReleaseRange(unsigned int first, unsigned int last, Filter should_release) {
  HandleTracker& handles = Handles();
  handles.ForEach([&](uint64_t fd, const HandleTracker::Handle&) {
    if (fd >= first && fd <= last && should_release(static_cast<int>(fd))) handles.Release(fd);
  });
}

}  // namespace

uint32_t ClassifyFd(int fd) {
  ErrnoKeeper keep_errno;
  return Classify(fd, /*opened_from_path=*/false);
}

uint32_t ClassifyPathFd(int fd) {
  ErrnoKeeper keep_errno;
  return Classify(fd, /*opened_from_path=*/true);
}

uint32_t SocketType(int domain) {
  switch (domain) {
    case AF_UNIX:
      return wire::kFdSocketUnix;
    case AF_INET:
      return wire::kFdSocketInet;
    case AF_INET6:
      return wire::kFdSocketInet6;
    case AF_NETLINK:
      return wire::kFdSocketNetlink;
    default:
      return wire::kFdSocketOther;
  }
}

uint32_t FdTypeOf(int fd) {
  HandleTracker::Handle handle;
  if (fd >= 0 && Handles().Lookup(static_cast<uint64_t>(fd), &handle) && handle.state != 0) {
    return static_cast<uint32_t>(handle.state);
  }
  return ClassifyFd(fd);
}

void OnFdCreated(int fd, uint32_t fd_type) {
  if (fd < 0) return;
  ErrnoKeeper keep_errno;
  Record(fd, CaptureSite(), fd_type);
  StartCensusIfDue();
}

void OnFdPairCreated(const int fds[2], uint32_t fd_type) {
  ErrnoKeeper keep_errno;
  const uint32_t site = CaptureSite();
  Record(fds[0], site, fd_type);
  Record(fds[1], site, fd_type);
  StartCensusIfDue();
}

void OnFdAdopted(int fd) {
  if (fd < 0) return;
  ErrnoKeeper keep_errno;
  HandleTracker::Handle handle;
  if (Handles().Lookup(static_cast<uint64_t>(fd), &handle)) return;
  Record(fd, CaptureSite(), ClassifyFd(fd));
  StartCensusIfDue();
}

void OnFdsReceived(const struct msghdr* message) {
  if (message == nullptr || message->msg_control == nullptr) return;
  ErrnoKeeper keep_errno;
  // The kernel set msg_controllen to what it wrote; each header is bounds-checked against it
  // rather than trusted (CMSG_NXTHDR may call into libc).
  const auto* control = static_cast<const unsigned char*>(message->msg_control);
  const size_t length = message->msg_controllen;
  uint32_t site = StackTable::kNoSite;
  bool captured = false;
  for (size_t offset = 0; offset + sizeof(cmsghdr) <= length;) {
    cmsghdr header;
    memcpy(&header, control + offset, sizeof(header));
    if (header.cmsg_len < sizeof(cmsghdr) || header.cmsg_len > length - offset) break;
    if (header.cmsg_level == SOL_SOCKET && header.cmsg_type == SCM_RIGHTS) {
      const size_t count = (header.cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* data = control + offset + CMSG_LEN(0);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, data + i * sizeof(int), sizeof(fd));
        if (!captured) {
          site = CaptureSite();
          captured = true;
        }
        Record(fd, site, ClassifyFd(fd));
      }
    }
    offset += CMSG_ALIGN(header.cmsg_len);
  }
  if (captured) StartCensusIfDue();
}

void OnFdClosing(int fd) {
  if (fd < 0) return;
  ErrnoKeeper keep_errno;
  HandleTracker::Handle handle;
  // A close of a number the shim does not know is a no-op here, not an "untracked release":
  // programs close blindly (a loop up to the fd limit, error paths closing -1 or twice), and
  // counting those would bury the real untracked releases that reconciliation finds.
  if (!Handles().Lookup(static_cast<uint64_t>(fd), &handle)) return;
  Handles().Release(static_cast<uint64_t>(fd));
}

void OnFdRangeClosing(unsigned int first, unsigned int last, int flags) {
  // The kernel's checks: unknown flags or an inverted range fail with EINVAL, closing nothing.
  if ((flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) != 0 || first > last) return;
  // CLOSE_RANGE_CLOEXEC only marks the descriptors close-on-exec: they stay open.
  if ((flags & CLOSE_RANGE_CLOEXEC) != 0) return;
  // CLOSE_RANGE_UNSHARE closes in a private copy of the descriptor table. Other threads keep
  // theirs, but the call is made right before exec or by a single-threaded process, so it is
  // treated as a close; reconciliation restores any descriptor the process still has.
  ErrnoKeeper keep_errno;
  ReleaseRange(first, last, [](int) { return true; });
}

void ReconcileFds() {
  HandleTracker& handles = Handles();
  // Closed where no hook saw it (a raw close syscall, or inside libc): released. Each entry is
  // checked on its own number, not against a listing, so a descriptor created by another thread
  // after the listing was taken is never mistaken for a closed one. The remaining race, the
  // number closed here and reused by another thread between the check and the release, releases
  // the new entry instead; the next census finds it open and records it at the unattributed
  // site, so the counts stay balanced.
  ReleaseRange(0, ~0u, [](int fd) { return !IsOpen(fd); });

  os::NumberedDirectory listing("/proc/self/fd");
  const int census_socket = g_runtime.reporter.census_socket_fd();
  for (uint64_t number; listing.Next(&number);) {
    const int fd = static_cast<int>(number);
    if (fd == census_socket) continue;  // the shim's own
    if (fd == listing.fd() && !os::HasPrivateFdTable()) continue;
    HandleTracker::Handle handle;
    if (handles.Lookup(number, &handle)) continue;
    // Open but unknown: created where no hook could see it. A descriptor a hook is about to
    // record (between the real call and the record) may be seen here first; the hook's record
    // then releases this entry as stale, again leaving the counts balanced. One closed since
    // the listing fails fstat (kFdUnknown) and is skipped.
    const uint32_t fd_type = ClassifyFd(fd);
    if (fd_type != wire::kFdUnknown) Record(fd, StackTable::kNoSite, fd_type);
  }
}

}  // namespace dw
