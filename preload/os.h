// os.h: the few Linux primitives the shim needs, built on raw system calls.
//
// Everything here bypasses the interposed libc entry points (open, close, read via syscall(2)),
// so the shim never records or perturbs its own activity, and never takes a stdio lock (heaptrack
// deadlocked that way reading /proc with fscanf).
//
// Thread-safety: all functions are thread-safe. Allocation: none from the target's heap; page
// memory comes from mmap. Safe inside a hook: MapPages/UnmapPages, and the /proc readers
// (ReadFile, OwnMemory) in the dlclose hook; all are system calls, so hooks use them only on
// rare paths such as table growth or a dlclose, never per allocation. Otherwise the /proc
// readers run on the census thread.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace dw::os {

// A raw system call, bypassing libc and so every hook: the one way the shim makes one outside
// this file (e.g. a hook that must work before the real functions are resolved).
long RawCall(long number, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0);

// Keeps errno as it was for the scope: every shim entry point that may run after a real call
// (which set errno for the caller) makes its own calls inside one.
// Inline: it wraps every recorded allocation.
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;

 private:
  int saved_;
};

// "<prefix><number><suffix>" into `out`, NUL-terminated (at least 64 bytes): /proc paths.
void ProcPath(char* out, const char* prefix, uint64_t number, const char* suffix = "");

// Parses an unsigned decimal at `cursor` and advances past it and one separator (the /proc
// field parser: "123 456" gives 123, then 456).
uint64_t ParseUnsigned(const char*& cursor);

// The entries of a /proc directory named by numbers (/proc/self/fd, /proc/self/task), read with
// getdents64 into a buffer of its own: no opendir, so no allocation and no stdio lock.
class NumberedDirectory {
 public:
  explicit NumberedDirectory(const char* path);
  ~NumberedDirectory();
  NumberedDirectory(const NumberedDirectory&) = delete;
  NumberedDirectory& operator=(const NumberedDirectory&) = delete;

  // The directory's own descriptor (-1 if it could not be opened): a listing of /proc/self/fd
  // made from the program's table includes it.
  int fd() const { return fd_; }
  // The next entry named by a decimal number ("." and ".." are skipped); false at the end.
  bool Next(uint64_t* number);

 private:
  int fd_ = -1;
  long size_ = 0;
  long offset_ = 0;
  alignas(8) char entries_[4096];
};

// Anonymous private read-write pages, zero-filled, reserved lazily (MAP_NORESERVE).
// Returns nullptr on failure.
void* MapPages(size_t bytes);
void UnmapPages(void* address, size_t bytes);
// Gives pages back to the kernel; they read as zeroes afterwards.
void DiscardPages(void* address, size_t bytes);

// A growable byte buffer in mmap'd memory, for the census thread's messages and /proc reads.
class PageBuffer {
 public:
  // Ensures room for `extra` more bytes; false if memory could not be mapped.
  bool Reserve(size_t extra);
  // Appends bytes; false (and nothing appended) if memory could not be mapped.
  bool Append(const void* data, size_t bytes);
  void Clear() { size_ = 0; }
  // Drops the first `bytes` bytes (already sent).
  void Consume(size_t bytes);
  // Returns the memory to the kernel; the buffer is empty and reusable afterwards.
  void Release();
  // Forgets the memory without unmapping it: for a fork child, whose copy of the buffer may
  // have been caught half-grown by the fork (the mapping stays, a copy-on-write leftover).
  void Forget() { *this = PageBuffer(); }

  const char* data() const { return data_; }
  char* data() { return data_; }
  size_t size() const { return size_; }
  void set_size(size_t size) { size_ = size; }
  size_t capacity() const { return capacity_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Reads a whole file (e.g. /proc/self/maps) into `out`, replacing its contents.
bool ReadFile(const char* path, PageBuffer& out);

// Reads at most `capacity - 1` bytes of a small file into `buffer`, NUL-terminated.
// Returns the number of bytes read, or -1.
ssize_t ReadSmallFile(const char* path, char* buffer, size_t capacity);

// Reads a symbolic link (e.g. /proc/self/exe), not NUL-terminated; the length or -1.
ssize_t ReadLink(const char* path, char* buffer, size_t capacity);

// Reads this process's memory without touching it directly, through /proc/self/mem: an address
// unmapped meanwhile (a concurrent dlclose) gives an error, never a fault. Not process_vm_readv:
// seccomp profiles such as systemd's @system-service forbid that debugging call, and may kill
// the process for it.
class OwnMemory {
 public:
  OwnMemory();
  ~OwnMemory();
  OwnMemory(const OwnMemory&) = delete;
  OwnMemory& operator=(const OwnMemory&) = delete;

  // Copies `bytes` bytes at `address` into `out`; false if any of it is not readable.
  bool Read(uint64_t address, void* out, size_t bytes) const;

 private:
  int fd_ = -1;
};

pid_t GetPid();
pid_t GetTid();
// True while task `tid` of this process exists (/proc/self/task/<tid>).
bool TaskExists(pid_t tid);
uint64_t MonotonicNs();
uint64_t RealtimeNs();
// 64 random bits from getrandom(2), without blocking; before the entropy pool is ready (early
// boot) or where getrandom is refused (seccomp), a mix of clocks, pid and addresses: unique per
// process image, which is all its users need.
uint64_t RandomU64();
// True if the process was started set-uid, set-gid or with capabilities (AT_SECURE): its
// environment is the caller's, so nothing in it may steer where the shim sends data.
bool IsSecureExecution();

// True if the 8-byte word containing `address` can be read, found without touching it and
// without a descriptor: rt_sigprocmask copies the word in before it rejects an invalid `how`,
// so it fails with EFAULT for unreadable memory and EINVAL otherwise, changing nothing.
bool IsReadable(const void* address);

// ---- Waiting (the census thread's sleep; the exit path's bounded wait) ----

// Sleeps while `*word == expected`, until FutexWake or the CLOCK_MONOTONIC `deadline_ns`.
void FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t deadline_ns);
// Sleeps while `*word == expected`, until FutexWake or `timeout_ns` from now.
void FutexWaitFor(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns);
void FutexWakeAll(const std::atomic<uint32_t>* word);
void SleepNs(uint64_t ns);

// ---- Descriptors ----

// Gives the calling thread a descriptor table of its own, empty, without ever holding a
// reference to the process's descriptors (close_range with CLOSE_RANGE_UNSHARE, Linux 5.9).
// Afterwards the files this thread opens take no number from the program, and the program's
// close_range or dup2 cannot touch them. False if the kernel or a seccomp filter refuses it;
// the thread then still shares the program's table.
bool TakePrivateFdTable();
// True on a thread that TakePrivateFdTable() succeeded on.
bool HasPrivateFdTable();
// The process's descriptor `fd` seen from any thread, private table or not, through
// /proc/self/fd (no descriptor is created): whether it is open, and its stat.
bool ProcessFdIsOpen(int fd);
bool StatProcessFd(int fd, struct stat* out);
// Reads the target of /proc/self/fd/<fd> (e.g. "anon_inode:[eventfd]"), NUL-terminated.
ssize_t ReadProcessFdLink(int fd, char* buffer, size_t capacity);

// A duplicate, in the calling thread's table, of the process's descriptor `fd` (pidfd_getfd:
// for a private-table thread to ask a socket its family). -1 if the kernel refuses.
int BorrowProcessFd(int fd);
// SO_DOMAIN of a socket.
bool SocketDomain(int fd, int* domain);

int Close(int fd);
// True if `fd` is open in the calling thread's table (fcntl F_GETFD).
bool FdIsOpenHere(int fd);
bool Fstat(int fd, struct stat* out);
// Where a descriptor of the shim's goes when it must sit in the program's table: above the
// numbers a program expects back from open() ("lowest free fd") and above FD_SETSIZE when the
// limit allows, but not near a high limit, since fork copies a descriptor table as large as its
// highest number. -1 if the limit cannot be read.
int HighFdFloor();
// Moves `fd` to the lowest free number at or above `floor` (close-on-exec) and closes the
// original; returns the new number or -1 (the original is closed either way).
int MoveFdAtOrAbove(int fd, int floor);

// A non-blocking, close-on-exec Unix stream socket connected to `path`, or -1 with errno.
int ConnectUnixSocket(const char* path);
// The credentials of a connected Unix socket's peer (for a client: of the listener).
bool PeerCredentials(int fd, pid_t* pid, uid_t* uid);
// send() with MSG_NOSIGNAL | MSG_DONTWAIT; -1 with errno as send(2).
ssize_t SendNoSignal(int fd, const void* data, size_t bytes);
// Waits up to `timeout_ms` for room to write on `fd`.
void WaitWritable(int fd, int timeout_ms);

// Writes to the program's standard error only if it is still the file it was at start-up
// (RememberStderr, called once in the shim's constructor): a daemon that pointed fd 2 at a
// client socket or a log of its own must not get our lines. Works from a private-table thread.
void RememberStderr();
void WriteToStartupStderr(const char* data, size_t bytes);

struct ProcessStat {
  pid_t ppid = 0;
  uint32_t threads = 0;
  uint64_t start_time_ticks = 0;
};
// Parses /proc/self/stat. False if it cannot be read.
bool ReadProcessStat(ProcessStat& out);
// Resident set size from /proc/self/statm, in bytes (0 if unreadable).
uint64_t ReadRssBytes();
// Number of open file descriptors, counted in /proc/self/fd (0 if unreadable).
uint32_t CountOpenFds();

}  // namespace dw::os
