#include "preload/unwinder.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unwind.h>

#include "preload/import_redirect.h"
#include "preload/os.h"
#include "preload/raw_log.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

struct LibgccWalk {
  void** frames;
  int capacity;
  int count;
};

_Unwind_Reason_Code CollectFrame(struct _Unwind_Context* context, void* argument) {
  auto* walk = static_cast<LibgccWalk*>(argument);
  if (walk->count >= walk->capacity) return _URC_END_OF_STACK;
  uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  walk->frames[walk->count++] = reinterpret_cast<void*>(ip);
  return _URC_NO_REASON;
}

// libunwind checks that an address is readable by writing a byte of it into a pipe of its own
// (and reopens the pipe when a read of it fails). That pipe would sit in the program's
// descriptor table: it takes two numbers and two of the program's fd limit, and after the
// program's closefrom libunwind would read and write whatever the program put on them. Its
// pipe2, read and syscall (through which it writes: syscall(SYS_write, ...)) are redirected
// here: the "pipe" is two numbers no descriptor can have, and writing to it is the
// descriptor-free os::IsReadable.
constexpr int kCheckReadEnd = 0x7ffffffe;
constexpr int kCheckWriteEnd = 0x7ffffffd;

using ReadFn = ssize_t (*)(int, void*, size_t);
using SyscallFn = long (*)(long, ...);
ReadFn g_libunwind_read = nullptr;
SyscallFn g_libunwind_syscall = nullptr;

int CheckPipe(int ends[2], int) {
  ends[0] = kCheckReadEnd;
  ends[1] = kCheckWriteEnd;
  return 0;
}

ssize_t CheckRead(int fd, void* buffer, size_t bytes) {
  if (fd != kCheckReadEnd) return g_libunwind_read(fd, buffer, bytes);
  errno = EAGAIN;  // "the pipe is fine and empty": no reopening
  return -1;
}

long CheckSyscall(long number, ...) {
  va_list list;
  va_start(list, number);
  long arguments[6];
  for (long& argument : arguments) argument = va_arg(list, long);
  va_end(list);
  if (number != SYS_write || arguments[0] != kCheckWriteEnd) {
    return g_libunwind_syscall(number, arguments[0], arguments[1], arguments[2], arguments[3],
                               arguments[4], arguments[5]);
  }
  if (os::IsReadable(reinterpret_cast<const void*>(arguments[1]))) return arguments[2];
  errno = EFAULT;
  return -1;
}

// Before libunwind's first use (its pipe is made when it initialises). All or nothing: with
// read and syscall redirected but not pipe2, the real pipe's reads would find no data.
bool RedirectMemoryChecks(void* libunwind) {
  void* original = nullptr;
  if (!RedirectImport(libunwind, "read", reinterpret_cast<void*>(CheckRead), &original)) {
    return false;
  }
  g_libunwind_read = reinterpret_cast<ReadFn>(original);
  if (!RedirectImport(libunwind, "syscall", reinterpret_cast<void*>(CheckSyscall), &original)) {
    return false;
  }
  g_libunwind_syscall = reinterpret_cast<SyscallFn>(original);
  return RedirectImport(libunwind, "pipe2", reinterpret_cast<void*>(CheckPipe), &original);
}

}  // namespace

int LibgccBacktrace(void** frames, int capacity) {
  LibgccWalk walk{frames, capacity, 0};
  _Unwind_Backtrace(CollectFrame, &walk);
  return walk.count;
}

UnwindMethod Unwinder::Init(uintptr_t shim_begin, uintptr_t shim_end) {
  shim_begin_ = shim_begin;
  shim_end_ = shim_end;
  // RTLD_LOCAL keeps libunwind's weak backtrace/_Unwind_Backtrace out of the global scope.
  void* libunwind = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (libunwind != nullptr && !RedirectMemoryChecks(libunwind)) {
    // A libunwind built differently: its pipe would be in the program's table, which is worse
    // than a slower unwinder.
    DW_LOG(kWarning, "cannot redirect libunwind's memory checks; using libgcc's unwinder");
    libunwind = nullptr;
  }
  if (libunwind != nullptr) {
    using SetCachingPolicyFn = int (*)(void*, int);
    auto set_caching =
        reinterpret_cast<SetCachingPolicyFn>(dlsym(libunwind, "_ULx86_64_set_caching_policy"));
    auto* address_space = static_cast<void**>(dlsym(libunwind, "_ULx86_64_local_addr_space"));
    backtrace_ = reinterpret_cast<BacktraceFn>(dlsym(libunwind, "unw_backtrace"));
    if (set_caching != nullptr && address_space != nullptr) {
      constexpr int kUnwCachePerThread = 2;  // UNW_CACHE_PER_THREAD: no global lock per unwind
      set_caching(*address_space, kUnwCachePerThread);
    }
    if (backtrace_ != nullptr) method_ = UnwindMethod::kLibunwind;
  }
  if (backtrace_ == nullptr) {
    // A failed dlopen leaves an error string that the next dl* call frees: clear it now, while
    // the guard is held, rather than from inside some later hook (docs/PITFALLS.md, section 1).
    dlerror();
    DW_LOG(kWarning, "libunwind.so.8 not found; using libgcc's slower unwinder");
    backtrace_ = LibgccBacktrace;
    method_ = UnwindMethod::kLibgcc;
  }
  // Warm-up: the first unwind loads libgcc_s / builds caches; do it here, not in a hook.
  uintptr_t scratch[wire::kMaxDepth];
  Capture(scratch, wire::kMaxDepth);
  return method_;
}

uint32_t Unwinder::CaptureWithMoreSlack(uintptr_t* frames, uint32_t max_depth,
                                        uint32_t shim_frames) const {
  void* raw[wire::kMaxDepth + kMaxShimFrames];
  // One more than the inline capture saw: this function's own frame.
  uint32_t slack = shim_frames + 1 < kMaxShimFrames ? shim_frames + 1 : kMaxShimFrames;
  for (;;) {
    // Only ever raised, even when threads race: a lowered value would cost retries again.
    uint32_t seen = shim_slack_.load(std::memory_order_relaxed);
    while (seen < slack &&
           !shim_slack_.compare_exchange_weak(seen, slack, std::memory_order_relaxed)) {
    }
    const int capacity = static_cast<int>(max_depth + slack);
    const int count = backtrace_(raw, capacity);
    const int first = FirstOutsideShim(raw, count);
    const bool cut_short = count == capacity && count - first < static_cast<int>(max_depth);
    if (!cut_short || slack >= kMaxShimFrames) {
      return CopyFrames(raw, first, count, frames, max_depth);
    }
    // Cut short means first > slack: the allowance strictly grows.
    slack = static_cast<uint32_t>(first) + 1 < kMaxShimFrames ? static_cast<uint32_t>(first) + 1
                                                              : kMaxShimFrames;
  }
}

}  // namespace dw
