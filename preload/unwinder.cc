#include "preload/unwinder.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unwind.h>

#include <cstring>

#include "preload/frame_rules.h"
#include "preload/import_redirect.h"
#include "preload/os.h"
#include "preload/raw_log.h"
#include "preload/runtime_internal.h"
#include "preload/wire_format.h"

// libgcc's FDE lookup (unwind-dw2-fde.h, not installed): the FDE covering `pc`, and in
// bases->func the start of its function. Binary search of .eh_frame_hdr under the loader's lock.
struct dwarf_eh_bases {
  void* tbase;
  void* dbase;
  void* func;
};
extern "C" const void* _Unwind_Find_FDE(void* pc, struct dwarf_eh_bases* bases);

// The fast walk's starting point, in the frame of whoever calls it: the return address into
// that caller, the caller's stack pointer once this returns, and rbp (which it does not touch).
extern "C" void dw_unwind_here(uintptr_t registers[3]);
asm(R"(
  .text
  .p2align 4
  .globl dw_unwind_here
  .hidden dw_unwind_here
  .type dw_unwind_here, @function
dw_unwind_here:
  .cfi_startproc
  movq (%rsp), %rax
  movq %rax, 0(%rdi)
  leaq 8(%rsp), %rax
  movq %rax, 8(%rdi)
  movq %rbp, 16(%rdi)
  ret
  .cfi_endproc
  .size dw_unwind_here, .-dw_unwind_here
)");

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
  // The fast walk follows the same CFI as either unwinder and hands them every frame it does
  // not follow, so it serves both (over libgcc's ~2.6 us per stack, the gain is larger still).
  fast_walk_ = rules_.Init(kRuleCacheBits);
  // Warm-up: the first unwind loads libgcc_s / builds caches; do it here, not in a hook.
  uintptr_t scratch[wire::kMaxDepth];
  CaptureWithLibrary(scratch, wire::kMaxDepth);
  Capture(scratch, wire::kMaxDepth);
  return method_;
}

uint32_t Unwinder::Capture(uintptr_t* frames, uint32_t max_depth) const {
  if (fast_walk_ && max_depth != 0) {
    const int depth = FastCapture(frames, max_depth);
    if (depth >= 0) return static_cast<uint32_t>(depth);
    fallbacks_.fetch_add(1, std::memory_order_relaxed);
  }
  return CaptureWithLibrary(frames, max_depth);
}

// One state of a fast walk: a frame's return address, stack pointer and rbp, and how the step to
// its caller went: where it read the caller's return address and rbp (offsets from the caller's
// sp, which is this frame's CFA) and whether it used rbp.
struct WalkStep {
  uintptr_t ip;
  uintptr_t sp;
  uintptr_t bp;  // meaningful only where some later step uses it (see RbpUsed)
  int32_t rbp_offset;
  int16_t ra_offset;
  bool rbp_saved;
  bool cfa_from_rbp;
};

// The current thread's last walk, and room for the next one (the two swap). Initial-exec TLS,
// zero at thread start (docs/PITFALLS.md, section 4); about 5.6 KiB per thread.
constexpr uint32_t kMaxSteps = wire::kMaxDepth + Unwinder::kMaxShimFrames;
constexpr uint32_t kThreadRuleBits = 6;
struct ThreadWalks {
  WalkStep steps[2][kMaxSteps];
  uint64_t epoch[2];
  uint32_t count[2];
  uint32_t last;  // which of the two holds the last walk
  // A direct-mapped copy of the rules this thread used last, in front of the shared cache: it
  // stays in the L1 cache, the shared one often does not. Valid for rules_epoch + 1 (zero: none).
  uint64_t rules_epoch;
  struct {
    uintptr_t ip;
    uint64_t packed;
  } rules[1u << kThreadRuleBits];
};

namespace {

__thread ThreadWalks t_walks __attribute__((tls_model("initial-exec")));

uint32_t Min(uint32_t a, uint32_t b) { return a < b ? a : b; }

// A walk is a function of its starting state and of the words it reads, nothing else. So if the
// last walk passed through a state equal to the current one, and every word its steps from there
// read still holds the value it read then, walking on would give the same frames again.
bool StillValid(const WalkStep* steps, uint32_t from, uint32_t count) {
  bool valid = true;
  for (uint32_t m = from; m + 1 < count; ++m) {
    const WalkStep& step = steps[m];
    const uintptr_t cfa = steps[m + 1].sp;
    valid &= *reinterpret_cast<const uintptr_t*>(cfa + step.ra_offset) == steps[m + 1].ip;
    valid &= !step.rbp_saved ||
             *reinterpret_cast<const uintptr_t*>(cfa + step.rbp_offset) == steps[m + 1].bp;
  }
  return valid;
}

// Whether the steps from `from` read rbp before they reload it from the stack. Code without
// frame pointers keeps any value in rbp, so two states that differ only there are the same
// state for a walk that never reads it.
bool RbpUsed(const WalkStep* steps, uint32_t from, uint32_t count) {
  for (uint32_t m = from; m + 1 < count; ++m) {
    if (steps[m].cfa_from_rbp) return true;
    if (steps[m].rbp_saved) return false;
  }
  return false;  // the last state's step is taken again, with the current rbp
}

// The last walk's states from `from` on, continued from `state`: its steps up to the first
// reload of rbp carried the current rbp, not the one recorded then.
void CopyStates(const WalkStep* from, uint32_t count, uintptr_t bp, WalkStep* to) {
  memcpy(to, from, count * sizeof(WalkStep));
  for (uint32_t m = 0; m < count; ++m) {
    to[m].bp = bp;
    if (to[m].rbp_saved) break;
  }
}

}  // namespace

uint64_t Unwinder::RuleFor(ThreadWalks& walks, uintptr_t ip, uint64_t epoch) const {
  if (walks.rules_epoch != epoch + 1) {  // a module was unloaded (or first use on this thread)
    memset(walks.rules, 0, sizeof(walks.rules));
    walks.rules_epoch = epoch + 1;
  }
  auto& mine = walks.rules[(ip * 0x9E3779B97F4A7C15ull) >> (64 - kThreadRuleBits)];
  if (mine.ip == ip) return mine.packed;
  uint64_t packed;
  if (!rules_.Lookup(ip, epoch, &packed)) {
    packed = FindFrameRule(ip - 1).Pack();  // the call instruction, not what follows it
    rules_.Insert(ip, epoch, packed);
  }
  mine.ip = ip;
  mine.packed = packed;
  return packed;
}

int Unwinder::FastCapture(uintptr_t* frames, uint32_t max_depth) const {
  // Rules are valid until a module is unloaded: each dlclose starts a new epoch.
  const uint64_t epoch = g_runtime.unloaded_modules.generation();
  ThreadWalks& walks = t_walks;
  const uint32_t last = walks.last;
  const WalkStep* before = walks.steps[last];
  uint32_t before_count = walks.epoch[last] == epoch ? walks.count[last] : 0;
  WalkStep* steps = walks.steps[last ^ 1];
  uint32_t count = 0;
  uint32_t match = 0;  // the first state of the last walk not below the current sp
  uint32_t depth = 0;
  uint32_t shim_frames = 0;
  const auto finish = [&]() {
    walks.count[last ^ 1] = count;
    walks.epoch[last ^ 1] = epoch;
    walks.last = last ^ 1;
    return static_cast<int>(depth);
  };
  // Adds a frame; false once the capture is full.
  const auto emit = [&](uintptr_t ip) {
    if (depth == 0 && ip >= shim_begin_ && ip < shim_end_) {
      ++shim_frames;
      return true;
    }
    frames[depth++] = ip;
    return depth < max_depth;
  };
  uintptr_t registers[3];
  dw_unwind_here(registers);
  WalkStep state{registers[0], registers[1], registers[2], 0, 0, false, false};
  for (;;) {
    if (count == kMaxSteps || shim_frames > kMaxShimFrames) return -1;
    steps[count++] = state;
    if (!emit(state.ip)) return finish();
    // The rest of the stack as the last walk found it, if nothing it read has changed since.
    while (match < before_count && before[match].sp < state.sp) ++match;
    if (match < before_count && before[match].sp == state.sp && before[match].ip == state.ip &&
        (before[match].bp == state.bp || !RbpUsed(before, match, before_count)) &&
        StillValid(before, match, before_count)) {
      // The states still in the shim's frames one by one, then the rest at once.
      uint32_t next = match;
      for (; next + 1 < before_count && depth == 0; ++next) {
        if (count == kMaxSteps || shim_frames > kMaxShimFrames) return -1;
        CopyStates(before + next, 2, state.bp, steps + count - 1);
        state.bp = steps[count].bp;
        ++count;
        if (!emit(before[next + 1].ip)) return finish();
      }
      const uint32_t take = Min(before_count - 1 - next, max_depth - depth);
      if (count + take > kMaxSteps) return -1;
      CopyStates(before + next, take + 1, state.bp, steps + count - 1);
      for (uint32_t i = 0; i < take; ++i) frames[depth + i] = before[next + 1 + i].ip;
      count += take;
      depth += take;
      if (depth == max_depth) return finish();
      // The last state's own step is taken again below: the last walk may have stopped there
      // for want of depth, and the step shows whether the stack ends.
      state = steps[count - 1];
      before_count = 0;
    }
    const FrameRule rule = FrameRule::Unpack(RuleFor(walks, state.ip, epoch));
    if (rule.kind == FrameRule::kOutermost) return finish();
    if (rule.kind != FrameRule::kStep) return -1;
    const uintptr_t cfa = (rule.cfa_from_rbp ? state.bp : state.sp) + rule.cfa_offset;
    if (cfa <= state.sp) return -1;  // callers' frames are above: anything else is for libunwind
    WalkStep& stepped = steps[count - 1];
    stepped.ra_offset = static_cast<int16_t>(rule.ra_offset);
    stepped.rbp_offset = rule.rbp_offset;
    stepped.rbp_saved = rule.rbp_saved;
    stepped.cfa_from_rbp = rule.cfa_from_rbp;
    state.ip = *reinterpret_cast<const uintptr_t*>(cfa + rule.ra_offset);
    if (rule.rbp_saved) state.bp = *reinterpret_cast<const uintptr_t*>(cfa + rule.rbp_offset);
    state.sp = cfa;
    if (state.ip == 0) return finish();
  }
}

uint32_t Unwinder::CaptureWithLibrary(uintptr_t* frames, uint32_t max_depth) const {
  if (backtrace_ == nullptr || max_depth == 0) return 0;
  void* raw[wire::kMaxDepth + kMaxShimFrames];
  // Each frame unwound costs ~7 ns, so only as many of the shim's own frames are allowed for as
  // have been seen; a capture that finds more unwinds again with room for them, which happens a
  // few times per process, and so no stack is ever cut short by the shim's frames.
  uint32_t slack = shim_slack_.load(std::memory_order_relaxed);
  int count = 0;
  int first = 0;
  for (;;) {
    const int capacity = static_cast<int>(max_depth + slack);
    count = backtrace_(raw, capacity);
    first = 0;
    while (first < count) {
      auto ip = reinterpret_cast<uintptr_t>(raw[first]);
      if (ip < shim_begin_ || ip >= shim_end_) break;
      ++first;
    }
    const bool cut_short = count == capacity && count - first < static_cast<int>(max_depth);
    if (!cut_short || slack >= kMaxShimFrames) break;
    slack = static_cast<uint32_t>(first) + 1 < kMaxShimFrames ? static_cast<uint32_t>(first) + 1
                                                              : kMaxShimFrames;
    // Only ever raised, even when threads race: a lowered value would cost retries again.
    uint32_t seen = shim_slack_.load(std::memory_order_relaxed);
    while (seen < slack &&
           !shim_slack_.compare_exchange_weak(seen, slack, std::memory_order_relaxed)) {
    }
  }
  uint32_t depth = 0;
  for (int i = first; i < count && depth < max_depth; ++i) {
    frames[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  }
  return depth;
}

}  // namespace dw

// ---- Frame rules: DWARF CFI, the subset libunwind's fast trace follows ----------------------

namespace dw {
namespace {

constexpr uint32_t kDwarfRbp = 6;
constexpr uint32_t kDwarfRsp = 7;

// Reads .eh_frame bytes. Every read is bounded by `end`; a read past it sets `failed`.
class CfiReader {
 public:
  CfiReader(const uint8_t* at, const uint8_t* end) : at_(at), end_(end) {}
  bool failed() const { return failed_; }
  bool done() const { return failed_ || at_ >= end_; }
  const uint8_t* at() const { return at_; }

  uint64_t Fixed(size_t bytes) {
    if (static_cast<size_t>(end_ - at_) < bytes) return Fail();
    uint64_t value = 0;
    memcpy(&value, at_, bytes);  // x86-64: little-endian, as the CFI
    at_ += bytes;
    return value;
  }
  uint64_t Uleb() {
    uint64_t value = 0;
    for (unsigned shift = 0; at_ < end_ && shift < 64; shift += 7) {
      const uint8_t byte = *at_++;
      value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return Fail();
  }
  int64_t Sleb() {
    uint64_t value = 0;
    for (unsigned shift = 0; at_ < end_ && shift < 64;) {
      const uint8_t byte = *at_++;
      value |= uint64_t{byte & 0x7fu} << shift;
      shift += 7;
      if ((byte & 0x80) == 0) {
        if (shift < 64 && (byte & 0x40) != 0) value |= ~uint64_t{0} << shift;
        return static_cast<int64_t>(value);
      }
    }
    return static_cast<int64_t>(Fail());
  }
  // Skips a pointer of DW_EH_PE encoding `encoding` (its value is not needed: libgcc gives the
  // function's start). False for encodings whose size is not fixed by the format.
  bool SkipPointer(uint8_t encoding) {
    switch (encoding & 0x0f) {
      case 0x00:
        Fixed(8);
        break;  // absptr
      case 0x01:
        Uleb();
        break;
      case 0x09:
        Sleb();
        break;
      case 0x02:
      case 0x0a:
        Fixed(2);
        break;
      case 0x03:
      case 0x0b:
        Fixed(4);
        break;
      case 0x04:
      case 0x0c:
        Fixed(8);
        break;
      default:
        return false;
    }
    return (encoding & 0x70) != 0x50 && !failed_;  // DW_EH_PE_aligned: not fixed either
  }
  void Skip(uint64_t bytes) {
    if (static_cast<uint64_t>(end_ - at_) < bytes)
      Fail();
    else
      at_ += bytes;
  }

 private:
  uint64_t Fail() {
    failed_ = true;
    at_ = end_;
    return 0;
  }
  const uint8_t* at_;
  const uint8_t* end_;
  bool failed_ = false;
};

// What a register's rule is, as far as the fast walk cares.
struct RegisterRule {
  enum Kind : uint8_t { kSame, kUndefined, kOffset, kOther } kind = kSame;
  int64_t offset = 0;
};

struct CfiRow {
  uint32_t cfa_register = 0;
  int64_t cfa_offset = 0;
  bool cfa_valid = false;  // false: not set yet, or a DWARF expression
  RegisterRule rbp;
  RegisterRule ra;
};

struct CieInfo {
  uint64_t code_align = 1;
  int64_t data_align = 1;
  uint32_t ra_column = 16;
  uint8_t fde_encoding = 0;  // DW_EH_PE_absptr unless 'R' says otherwise
  bool has_augmentation_data = false;
  bool signal_frame = false;
  const uint8_t* instructions = nullptr;
  const uint8_t* end = nullptr;
};

// Reads the CIE at `cie`. False for anything this walk does not follow.
bool ReadCie(const uint8_t* cie, CieInfo* info) {
  uint32_t length;
  memcpy(&length, cie, 4);
  if (length == 0 || length == 0xffffffffu) return false;  // 64-bit DWARF: not in .eh_frame
  CfiReader in(cie + 4, cie + 4 + length);
  if (in.Fixed(4) != 0) return false;  // CIE id
  const uint64_t version = in.Fixed(1);
  if (version != 1 && version != 3) return false;
  const auto* augmentation = reinterpret_cast<const char*>(in.at());
  const size_t augmentation_length = strnlen(augmentation, static_cast<size_t>(length));
  in.Skip(augmentation_length + 1);
  if (augmentation[0] != '\0' && augmentation[0] != 'z') return false;  // e.g. "eh": ancient
  info->code_align = in.Uleb();
  info->data_align = in.Sleb();
  info->ra_column = static_cast<uint32_t>(version == 1 ? in.Fixed(1) : in.Uleb());
  if (augmentation[0] == 'z') {
    info->has_augmentation_data = true;
    const uint64_t data_length = in.Uleb();
    const uint8_t* data_end = in.at() + data_length;
    for (size_t i = 1; i < augmentation_length; ++i) {
      switch (augmentation[i]) {
        case 'R':
          info->fde_encoding = static_cast<uint8_t>(in.Fixed(1));
          break;
        case 'L':
          in.Fixed(1);
          break;
        case 'P':
          if (!in.SkipPointer(static_cast<uint8_t>(in.Fixed(1)))) return false;
          break;
        case 'S':
          info->signal_frame = true;
          break;
        default:
          i = augmentation_length;
          break;  // the rest is skipped by its length
      }
    }
    if (in.failed() || data_end > cie + 4 + length || data_end < in.at()) return false;
    in = CfiReader(data_end, cie + 4 + length);
  }
  if (in.failed()) return false;
  info->instructions = in.at();
  info->end = cie + 4 + length;
  return true;
}

void SetRule(const CieInfo& cie, uint64_t reg, RegisterRule rule, CfiRow* row) {
  if (reg == kDwarfRbp) row->rbp = rule;
  if (reg == cie.ra_column) row->ra = rule;
}

// Runs CFA instructions until the row for `pc` is reached (`loc` is the address the first
// instruction applies at). `initial` is the CIE's row, for DW_CFA_restore. False on anything
// malformed or not understood.
bool RunCfi(const CieInfo& cie, CfiReader in, uintptr_t loc, uintptr_t pc, const CfiRow& initial,
            CfiRow* row) {
  constexpr int kMaxRemembered = 8;
  CfiRow remembered[kMaxRemembered];
  int remembered_count = 0;
  while (!in.done()) {
    const uint8_t op = static_cast<uint8_t>(in.Fixed(1));
    uint64_t advance = 0;
    switch (op >> 6) {
      case 1:
        advance = op & 0x3f;
        break;  // DW_CFA_advance_loc
      case 2:
        SetRule(cie, op & 0x3f,
                {RegisterRule::kOffset, static_cast<int64_t>(in.Uleb()) * cie.data_align}, row);
        continue;
      case 3:  // DW_CFA_restore
        if ((op & 0x3f) == kDwarfRbp) row->rbp = initial.rbp;
        if ((op & 0x3f) == cie.ra_column) row->ra = initial.ra;
        continue;
      default:
        break;
    }
    if (op >> 6 == 0) {
      switch (op) {
        case 0x00:
          break;  // nop
        case 0x02:
          advance = in.Fixed(1);
          break;  // advance_loc1
        case 0x03:
          advance = in.Fixed(2);
          break;  // advance_loc2
        case 0x04:
          advance = in.Fixed(4);
          break;      // advance_loc4
        case 0x05: {  // offset_extended
          const uint64_t reg = in.Uleb();
          SetRule(cie, reg,
                  {RegisterRule::kOffset, static_cast<int64_t>(in.Uleb()) * cie.data_align}, row);
          break;
        }
        case 0x06: {  // restore_extended
          const uint64_t reg = in.Uleb();
          if (reg == kDwarfRbp) row->rbp = initial.rbp;
          if (reg == cie.ra_column) row->ra = initial.ra;
          break;
        }
        case 0x07:
          SetRule(cie, in.Uleb(), {RegisterRule::kUndefined, 0}, row);
          break;
        case 0x08:
          SetRule(cie, in.Uleb(), {RegisterRule::kSame, 0}, row);
          break;
        case 0x09:
          SetRule(cie, in.Uleb(), {RegisterRule::kOther, 0}, row);
          in.Uleb();
          break;
        case 0x0a:  // remember_state
          if (remembered_count == kMaxRemembered) return false;
          remembered[remembered_count++] = *row;
          break;
        case 0x0b:  // restore_state
          if (remembered_count == 0) return false;
          *row = remembered[--remembered_count];
          break;
        case 0x0c:  // def_cfa
          row->cfa_register = static_cast<uint32_t>(in.Uleb());
          row->cfa_offset = static_cast<int64_t>(in.Uleb());
          row->cfa_valid = true;
          break;
        case 0x0d:
          row->cfa_register = static_cast<uint32_t>(in.Uleb());
          break;
        case 0x0e:
          row->cfa_offset = static_cast<int64_t>(in.Uleb());
          break;
        case 0x0f:
          row->cfa_valid = false;
          in.Skip(in.Uleb());
          break;      // def_cfa_expression
        case 0x10:    // expression
        case 0x16: {  // val_expression
          SetRule(cie, in.Uleb(), {RegisterRule::kOther, 0}, row);
          in.Skip(in.Uleb());
          break;
        }
        case 0x11: {  // offset_extended_sf
          const uint64_t reg = in.Uleb();
          SetRule(cie, reg, {RegisterRule::kOffset, in.Sleb() * cie.data_align}, row);
          break;
        }
        case 0x12:  // def_cfa_sf
          row->cfa_register = static_cast<uint32_t>(in.Uleb());
          row->cfa_offset = in.Sleb() * cie.data_align;
          row->cfa_valid = true;
          break;
        case 0x13:
          row->cfa_offset = in.Sleb() * cie.data_align;
          break;  // def_cfa_offset_sf
        case 0x14:
          SetRule(cie, in.Uleb(), {RegisterRule::kOther, 0}, row);
          in.Uleb();
          break;
        case 0x15:
          SetRule(cie, in.Uleb(), {RegisterRule::kOther, 0}, row);
          in.Sleb();
          break;
        case 0x2e:
          in.Uleb();
          break;      // GNU_args_size
        case 0x2f: {  // GNU_negative_offset_extended
          const uint64_t reg = in.Uleb();
          SetRule(cie, reg,
                  {RegisterRule::kOffset, -static_cast<int64_t>(in.Uleb()) * cie.data_align}, row);
          break;
        }
        default:
          return false;  // set_loc, vendor extensions: not followed
      }
    }
    if (advance != 0) {
      loc += advance * cie.code_align;
      if (loc > pc) return !in.failed();
    }
  }
  return !in.failed();
}

FrameRule RuleOf(const CfiRow& row) {
  FrameRule rule;
  if (row.ra.kind == RegisterRule::kUndefined) {
    rule.kind = FrameRule::kOutermost;
    return rule;
  }
  if (!row.cfa_valid || (row.cfa_register != kDwarfRsp && row.cfa_register != kDwarfRbp) ||
      row.ra.kind != RegisterRule::kOffset ||
      (row.rbp.kind != RegisterRule::kSame && row.rbp.kind != RegisterRule::kOffset)) {
    return rule;
  }
  rule.kind = FrameRule::kStep;
  rule.cfa_from_rbp = row.cfa_register == kDwarfRbp;
  rule.rbp_saved = row.rbp.kind == RegisterRule::kOffset;
  rule.cfa_offset = static_cast<int32_t>(row.cfa_offset);
  rule.rbp_offset = static_cast<int32_t>(row.rbp.offset);
  rule.ra_offset = static_cast<int32_t>(row.ra.offset);
  if (rule.cfa_offset != row.cfa_offset || rule.rbp_offset != row.rbp.offset ||
      rule.ra_offset != row.ra.offset) {
    return FrameRule{};
  }
  return rule;
}

template <unsigned kBits>
bool FitsSigned(int64_t value) {
  return value >= -(int64_t{1} << (kBits - 1)) && value < (int64_t{1} << (kBits - 1));
}

}  // namespace

uint64_t FrameRule::Pack() const {
  if (kind != kStep) return kind;
  if (!FitsSigned<24>(cfa_offset) || !FitsSigned<12>(rbp_offset) || !FitsSigned<8>(ra_offset)) {
    return kUnsupported;
  }
  return uint64_t{kind} | uint64_t{cfa_from_rbp} << 2 | uint64_t{rbp_saved} << 3 |
         (static_cast<uint64_t>(cfa_offset) & 0xffffff) << 4 |
         (static_cast<uint64_t>(rbp_offset) & 0xfff) << 28 |
         (static_cast<uint64_t>(ra_offset) & 0xff) << 40;
}

FrameRule FindFrameRule(uintptr_t pc) {
  dwarf_eh_bases bases{};
  const auto* fde =
      static_cast<const uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(pc), &bases));
  if (fde == nullptr) return FrameRule{};
  uint32_t length;
  memcpy(&length, fde, 4);
  if (length == 0 || length == 0xffffffffu) return FrameRule{};
  uint32_t cie_offset;
  memcpy(&cie_offset, fde + 4, 4);
  CieInfo cie;
  if (!ReadCie(fde + 4 - cie_offset, &cie) || cie.signal_frame) return FrameRule{};
  CfiReader in(fde + 8, fde + 4 + length);
  if (!in.SkipPointer(cie.fde_encoding) || !in.SkipPointer(cie.fde_encoding & 0x0f)) {
    return FrameRule{};
  }
  if (cie.has_augmentation_data) in.Skip(in.Uleb());
  if (in.failed()) return FrameRule{};
  const auto func = reinterpret_cast<uintptr_t>(bases.func);
  CfiRow initial;
  if (!RunCfi(cie, CfiReader(cie.instructions, cie.end), func, ~uintptr_t{0}, initial, &initial)) {
    return FrameRule{};
  }
  CfiRow row = initial;
  if (!RunCfi(cie, in, func, pc, initial, &row)) return FrameRule{};
  return RuleOf(row);
}

// ---- The rule cache ---------------------------------------------------------------------------

bool FrameRuleCache::Init(uint32_t slots_log2) {
  const size_t bytes = sizeof(Slot) << slots_log2;
  slots_ = static_cast<Slot*>(os::MapPages(bytes));
  if (slots_ == nullptr) return false;
  mask_ = (uint64_t{1} << slots_log2) - 1;
  shift_ = 64 - slots_log2;
  return true;
}

void FrameRuleCache::ReleaseMemory() {
  if (slots_ != nullptr) os::UnmapPages(slots_, sizeof(Slot) * (mask_ + 1));
  slots_ = nullptr;
}

void FrameRuleCache::Insert(uintptr_t ip, uint64_t epoch, uint64_t packed) {
  if (slots_ == nullptr) return;
  const uint64_t want = Key(ip, epoch);
  for (uint64_t i = 0, at = Home(ip); i < kProbes; ++i, at = (at + 1) & mask_) {
    Slot& slot = slots_[at];
    uint64_t key = slot.key.load(std::memory_order_acquire);
    if (key == want) return;  // another thread cached it (the same rule: same code, same epoch)
    // Free, or left by an earlier epoch (never used again): take it. A slot of this epoch, or
    // one being written, belongs to another address.
    const bool stale = key != 0 && key != kBusy && ((key >> 47) & 0xFFFF) != (epoch & 0xFFFF);
    if (key != 0 && !stale) continue;
    if (!slot.key.compare_exchange_strong(key, kBusy, std::memory_order_acquire)) continue;
    std::atomic_thread_fence(std::memory_order_release);
    slot.rule.store(packed | EpochTag(epoch) << 48, std::memory_order_relaxed);
    slot.key.store(want, std::memory_order_release);
    return;
  }
}

}  // namespace dw
