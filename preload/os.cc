#include "preload/os.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dw::os {
namespace {

constexpr size_t kPageSize = 4096;

size_t RoundUpToPages(size_t bytes) { return (bytes + kPageSize - 1) & ~(kPageSize - 1); }

int RawOpen(const char* path, int flags) {
  return static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0));
}
void RawClose(int fd) { syscall(SYS_close, fd); }
ssize_t RawRead(int fd, void* buffer, size_t bytes) {
  for (;;) {
    ssize_t got = syscall(SYS_read, fd, buffer, bytes);
    if (got >= 0 || errno != EINTR) return got;
  }
}

// Set on a thread whose descriptor table is its own (the census thread, when the kernel allows).
__thread bool t_private_fd_table = false;

// Standard error as it was when the shim started: device and inode, or 0/0 if fd 2 was closed.
dev_t g_stderr_device = 0;
ino_t g_stderr_inode = 0;

// Writes `value` in decimal at `out` (no NUL); returns the end.
char* FormatUnsigned(char* out, uint64_t value) {
  char digits[20];
  int count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) *out++ = digits[--count];
  return out;
}

}  // namespace

long RawCall(long number, long a, long b, long c, long d, long e, long f) {
  return syscall(number, a, b, c, d, e, f);
}

void ProcPath(char* out, const char* prefix, uint64_t number, const char* suffix) {
  const size_t prefix_length = strlen(prefix);
  memcpy(out, prefix, prefix_length);
  char* cursor = FormatUnsigned(out + prefix_length, number);
  const size_t suffix_length = strlen(suffix);
  memcpy(cursor, suffix, suffix_length + 1);
}

uint64_t ParseUnsigned(const char*& cursor) {
  uint64_t value = 0;
  while (*cursor >= '0' && *cursor <= '9') {
    value = value * 10 + static_cast<uint64_t>(*cursor++ - '0');
  }
  if (*cursor != '\0') ++cursor;
  return value;
}

NumberedDirectory::NumberedDirectory(const char* path)
    : fd_(RawOpen(path, O_RDONLY | O_DIRECTORY)) {}

NumberedDirectory::~NumberedDirectory() {
  if (fd_ >= 0) RawClose(fd_);
}

bool NumberedDirectory::Next(uint64_t* number) {
  while (fd_ >= 0) {
    if (offset_ >= size_) {
      size_ = syscall(SYS_getdents64, fd_, entries_, sizeof(entries_));
      offset_ = 0;
      if (size_ <= 0) return false;
    }
    const auto* entry = reinterpret_cast<const struct dirent64*>(entries_ + offset_);
    offset_ += entry->d_reclen;
    const char* cursor = entry->d_name;
    if (*cursor < '0' || *cursor > '9') continue;
    *number = ParseUnsigned(cursor);
    return true;
  }
  return false;
}

void* MapPages(size_t bytes) {
  void* address = mmap(nullptr, RoundUpToPages(bytes), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return address == MAP_FAILED ? nullptr : address;
}

void UnmapPages(void* address, size_t bytes) {
  if (address != nullptr) munmap(address, RoundUpToPages(bytes));
}

void DiscardPages(void* address, size_t bytes) {
  if (address != nullptr) madvise(address, RoundUpToPages(bytes), MADV_DONTNEED);
}

ssize_t ReadLink(const char* path, char* buffer, size_t capacity) {
  return syscall(SYS_readlinkat, AT_FDCWD, path, buffer, capacity);
}

bool PageBuffer::Reserve(size_t extra) {
  if (size_ + extra <= capacity_) return true;
  size_t wanted = capacity_ == 0 ? 64 * 1024 : capacity_ * 2;
  while (wanted < size_ + extra) wanted *= 2;
  void* grown = MapPages(wanted);
  if (grown == nullptr) return false;
  if (size_ > 0) memcpy(grown, data_, size_);
  UnmapPages(data_, capacity_);
  data_ = static_cast<char*>(grown);
  capacity_ = RoundUpToPages(wanted);
  return true;
}

bool PageBuffer::Append(const void* data, size_t bytes) {
  if (!Reserve(bytes)) return false;
  memcpy(data_ + size_, data, bytes);
  size_ += bytes;
  return true;
}

void PageBuffer::Release() {
  UnmapPages(data_, capacity_);
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
}

OwnMemory::OwnMemory() : fd_(RawOpen("/proc/self/mem", O_RDONLY)) {}

OwnMemory::~OwnMemory() {
  if (fd_ >= 0) RawClose(fd_);
}

bool OwnMemory::Read(uint64_t address, void* out, size_t bytes) const {
  if (fd_ < 0 || address > static_cast<uint64_t>(INT64_MAX)) return false;
  const long got = syscall(SYS_pread64, fd_, out, bytes, static_cast<off_t>(address));
  return got == static_cast<long>(bytes);
}

void PageBuffer::Consume(size_t bytes) {
  if (bytes >= size_) {
    size_ = 0;
    return;
  }
  memmove(data_, data_ + bytes, size_ - bytes);
  size_ -= bytes;
}

bool ReadFile(const char* path, PageBuffer& out) {
  out.Clear();
  int fd = RawOpen(path, O_RDONLY);
  if (fd < 0) return false;
  bool ok = true;
  for (;;) {
    if (!out.Reserve(16 * 1024)) {
      ok = false;
      break;
    }
    ssize_t got = RawRead(fd, out.data() + out.size(), out.capacity() - out.size());
    if (got < 0) ok = false;
    if (got <= 0) break;
    out.set_size(out.size() + static_cast<size_t>(got));
  }
  RawClose(fd);
  return ok;
}

ssize_t ReadSmallFile(const char* path, char* buffer, size_t capacity) {
  int fd = RawOpen(path, O_RDONLY);
  if (fd < 0) return -1;
  size_t total = 0;
  while (total + 1 < capacity) {
    ssize_t got = RawRead(fd, buffer + total, capacity - 1 - total);
    if (got <= 0) break;
    total += static_cast<size_t>(got);
  }
  RawClose(fd);
  buffer[total] = '\0';
  return static_cast<ssize_t>(total);
}

pid_t GetPid() { return static_cast<pid_t>(syscall(SYS_getpid)); }
pid_t GetTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

uint64_t MonotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t RealtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t RandomU64() {
  uint64_t value = 0;
  if (RawCall(SYS_getrandom, reinterpret_cast<long>(&value), sizeof(value), GRND_NONBLOCK) ==
      static_cast<long>(sizeof(value))) {
    return value;
  }
  // splitmix64's finaliser over what differs between images: two images of one process differ
  // in time, and in their stack address under ASLR.
  uint64_t mix = RealtimeNs() ^ (MonotonicNs() << 17) ^ (static_cast<uint64_t>(GetPid()) << 40) ^
                 reinterpret_cast<uintptr_t>(&value);
  mix = (mix ^ (mix >> 30)) * 0xbf58476d1ce4e5b9u;
  mix = (mix ^ (mix >> 27)) * 0x94d049bb133111ebu;
  return mix ^ (mix >> 31);
}

bool ReadProcessStat(ProcessStat& out) {
  char text[1024];
  if (ReadSmallFile("/proc/self/stat", text, sizeof(text)) <= 0) return false;
  // The command name (field 2) is in parentheses and may itself contain spaces or ')', so
  // fields are counted from the last ')'.
  const char* cursor = strrchr(text, ')');
  if (cursor == nullptr || cursor[1] != ' ') return false;
  cursor += 2;  // now at field 3 (state)
  int field = 3;
  while (*cursor != '\0' && field < 22) {
    if (field == 4) {
      out.ppid = static_cast<pid_t>(ParseUnsigned(cursor));
    } else if (field == 20) {
      out.threads = static_cast<uint32_t>(ParseUnsigned(cursor));
    } else {
      while (*cursor != ' ' && *cursor != '\0') ++cursor;
      if (*cursor == ' ') ++cursor;
    }
    ++field;
  }
  if (field != 22) return false;
  out.start_time_ticks = ParseUnsigned(cursor);
  return true;
}

uint64_t ReadRssBytes() {
  char text[256];
  if (ReadSmallFile("/proc/self/statm", text, sizeof(text)) <= 0) return 0;
  const char* cursor = text;
  ParseUnsigned(cursor);  // size
  return ParseUnsigned(cursor) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint32_t CountOpenFds() {
  NumberedDirectory fds("/proc/self/fd");
  uint32_t count = 0;
  for (uint64_t fd; fds.Next(&fd);) count += static_cast<int>(fd) != fds.fd() || t_private_fd_table;
  return count;
}

}  // namespace dw::os

namespace dw::os {

bool IsReadable(const void* address) {
  const uintptr_t word = reinterpret_cast<uintptr_t>(address) & ~uintptr_t{7};
  constexpr int kNoSuchHow = 0x7fff;
  const long result = syscall(SYS_rt_sigprocmask, kNoSuchHow, word, 0, 8);
  return result != 0 && errno == EINVAL;
}

bool IsSecureExecution() { return getauxval(AT_SECURE) != 0; }

void FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t deadline_ns) {
  timespec deadline{static_cast<time_t>(deadline_ns / 1000000000u),
                    static_cast<long>(deadline_ns % 1000000000u)};
  // FUTEX_WAIT_BITSET takes an absolute deadline, so a wake-up by a signal costs no drift.
  syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, &deadline, nullptr,
          FUTEX_BITSET_MATCH_ANY);
}

void FutexWaitFor(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) {
  timespec timeout{static_cast<time_t>(timeout_ns / 1000000000u),
                   static_cast<long>(timeout_ns % 1000000000u)};
  syscall(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, &timeout, nullptr, 0);
}

void FutexWakeAll(const std::atomic<uint32_t>* word) {
  syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT32_MAX, nullptr, nullptr, 0);
}

void SleepNs(uint64_t ns) {
  timespec duration{static_cast<time_t>(ns / 1000000000u), static_cast<long>(ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &duration, &duration) == EINTR) {
  }
}

bool TakePrivateFdTable() {
  // first = 0: the kernel copies no descriptor into the new table, so this thread never holds
  // a reference to one of the program's files (a pipe it closes must still reach EOF).
  if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) != 0) return false;
  t_private_fd_table = true;
  return true;
}

bool HasPrivateFdTable() { return t_private_fd_table; }

bool TaskExists(pid_t tid) {
  char path[64];
  ProcPath(path, "/proc/self/task/", static_cast<uint64_t>(tid));
  struct stat status;
  return syscall(SYS_newfstatat, AT_FDCWD, path, &status, 0) == 0;
}

bool ProcessFdIsOpen(int fd) {
  char path[64];
  ProcPath(path, "/proc/self/fd/", static_cast<unsigned>(fd));
  struct stat status;
  return syscall(SYS_newfstatat, AT_FDCWD, path, &status, AT_SYMLINK_NOFOLLOW) == 0;
}

bool StatProcessFd(int fd, struct stat* out) {
  char path[64];
  ProcPath(path, "/proc/self/fd/", static_cast<unsigned>(fd));
  return syscall(SYS_newfstatat, AT_FDCWD, path, out, 0) == 0;
}

ssize_t ReadProcessFdLink(int fd, char* buffer, size_t capacity) {
  char path[64];
  ProcPath(path, "/proc/self/fd/", static_cast<unsigned>(fd));
  long length = syscall(SYS_readlinkat, AT_FDCWD, path, buffer, capacity - 1);
  if (length < 0) return -1;
  buffer[length] = '\0';
  return length;
}

int BorrowProcessFd(int fd) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, syscall(SYS_getpid), 0));
  if (pidfd < 0) return -1;
  const int borrowed = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  RawClose(pidfd);
  return borrowed;
}

bool SocketDomain(int fd, int* domain) {
  socklen_t length = sizeof(*domain);
  return syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, domain, &length) == 0;
}

int Close(int fd) { return static_cast<int>(syscall(SYS_close, fd)); }

bool FdIsOpenHere(int fd) { return syscall(SYS_fcntl, fd, F_GETFD) != -1 || errno != EBADF; }

bool Fstat(int fd, struct stat* out) { return syscall(SYS_fstat, fd, out) == 0; }

int HighFdFloor() {
  rlimit limit;
  if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit) != 0) return -1;
  const rlim_t soft = limit.rlim_cur;
  if (soft > 2048) return 1024;
  if (soft > 128) return static_cast<int>(soft) - 64;
  return static_cast<int>(soft / 2);
}

int MoveFdAtOrAbove(int fd, int floor) {
  int moved = static_cast<int>(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor));
  syscall(SYS_close, fd);
  return moved;
}

int ConnectUnixSocket(const char* path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  size_t length = strnlen(path, sizeof(address.sun_path));
  if (length == sizeof(address.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(address.sun_path, path, length);
  int fd =
      static_cast<int>(syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd < 0) return -1;
  if (syscall(SYS_connect, fd, &address, sizeof(address)) != 0) {
    const int error = errno;
    syscall(SYS_close, fd);
    errno = error;
    return -1;
  }
  return fd;
}

bool PeerCredentials(int fd, pid_t* pid, uid_t* uid) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return false;
  }
  *pid = credentials.pid;
  *uid = credentials.uid;
  return true;
}

ssize_t SendNoSignal(int fd, const void* data, size_t bytes) {
  return syscall(SYS_sendto, fd, data, bytes, MSG_NOSIGNAL | MSG_DONTWAIT, nullptr, 0);
}

void WaitWritable(int fd, int timeout_ms) {
  pollfd wait{fd, POLLOUT, 0};
  syscall(SYS_poll, &wait, 1, timeout_ms);
}

void RememberStderr() {
  struct stat status;
  if (syscall(SYS_fstat, 2, &status) != 0) return;
  g_stderr_device = status.st_dev;
  g_stderr_inode = status.st_ino;
}

void WriteToStartupStderr(const char* data, size_t bytes) {
  if (g_stderr_inode == 0) return;
  struct stat status;
  if (!StatProcessFd(2, &status) || status.st_dev != g_stderr_device ||
      status.st_ino != g_stderr_inode) {
    return;
  }
  if (!t_private_fd_table) {
    ssize_t ignored = syscall(SYS_write, 2, data, bytes);
    (void)ignored;
    return;
  }
  // Our table has no fd 2: reopen the program's through /proc. A socket cannot be reopened;
  // the line is then dropped.
  int fd = RawOpen("/proc/self/fd/2", O_WRONLY | O_APPEND | O_NOCTTY);
  if (fd < 0) return;
  ssize_t ignored = syscall(SYS_write, fd, data, bytes);
  (void)ignored;
  RawClose(fd);
}

}  // namespace dw::os
