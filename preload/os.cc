#include "preload/os.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

// Parses a decimal field; advances `cursor` past it and one separator.
uint64_t ParseUnsigned(const char*& cursor) {
  uint64_t value = 0;
  while (*cursor >= '0' && *cursor <= '9')
    value = value * 10 + static_cast<uint64_t>(*cursor++ - '0');
  if (*cursor != '\0') ++cursor;
  return value;
}

}  // namespace

void* MapPages(size_t bytes) {
  void* address = mmap(nullptr, RoundUpToPages(bytes), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return address == MAP_FAILED ? nullptr : address;
}

void UnmapPages(void* address, size_t bytes) {
  if (address != nullptr) munmap(address, RoundUpToPages(bytes));
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
  int dir = RawOpen("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return 0;
  uint32_t count = 0;
  alignas(8) char entries[4096];
  for (;;) {
    long got = syscall(SYS_getdents64, dir, entries, sizeof(entries));
    if (got <= 0) break;
    for (long offset = 0; offset < got;) {
      auto* entry = reinterpret_cast<struct dirent64*>(entries + offset);
      if (entry->d_name[0] != '.') ++count;
      offset += entry->d_reclen;
    }
  }
  RawClose(dir);
  // The directory fd we opened to count is not the target's.
  return count > 0 ? count - 1 : 0;
}

}  // namespace dw::os
