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

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace dw::os {

// Anonymous private read-write pages, zero-filled, reserved lazily (MAP_NORESERVE).
// Returns nullptr on failure.
void* MapPages(size_t bytes);
void UnmapPages(void* address, size_t bytes);

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
uint64_t MonotonicNs();
uint64_t RealtimeNs();

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
