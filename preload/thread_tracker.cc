#include "preload/thread_tracker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "preload/events.h"
#include "preload/record_writer.h"
#include "preload/runtime_internal.h"
#include "preload/thread_state.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

uint32_t TidOf(uint64_t state) { return static_cast<uint32_t>(state & ThreadTracker::kTidMask); }

bool Contains(const ScratchArray<uint32_t>& sorted, uint32_t tid) {
  return std::binary_search(sorted.begin(), sorted.end(), tid);
}

// Appends the decimal digits of `value` at `out`; returns the end.
// "/proc/self/task/<tid>/<file>" into `path` (at least 64 bytes).
void TaskPath(char* path, uint32_t tid, const char* file) {
  char suffix[16] = "/";
  strncat(suffix, file, sizeof(suffix) - 2);
  os::ProcPath(path, "/proc/self/task/", tid, suffix);
}

void SkipFields(const char*& cursor, int fields) {
  for (int i = 0; i < fields && *cursor != '\0'; ++i) {
    while (*cursor != ' ' && *cursor != '\0') ++cursor;
    if (*cursor == ' ') ++cursor;
  }
}

// The kinds of Observation, in ThreadSiteState's order.
enum ObservedKind : uint8_t { kRunning, kSleeping, kDiskSleeping, kStopped, kExitedUnjoined };

ObservedKind KindOfState(char state) {
  switch (state) {
    case 'R':
      return kRunning;
    case 'D':
      return kDiskSleeping;
    case 'T':
    case 't':
      return kStopped;
    case 'Z':
    case 'X':
      return kExitedUnjoined;
    default:  // S, I, W, P: waiting for something
      return kSleeping;
  }
}

// ---- Process-wide state of the hook side ----

enum KeyState : uint32_t { kKeyNone, kKeyCreating, kKeyReady, kKeyFailed };
constinit std::atomic<uint32_t> g_key_state{kKeyNone};
constinit pthread_key_t g_exit_key = 0;
// The pid whose threads the table describes; a different getpid() on the census thread means a
// fork that ran no handlers (_Fork, raw clone).
constinit std::atomic<pid_t> g_table_pid{0};
// Census-private: the tasks of /proc/self/task.
constinit ScratchArray<uint32_t> g_task_list;

void ExitKeyDestructor(void* value) {
  // Re-armed until the last round, so the target's own key destructors (which may still use
  // the thread) run first; glibc runs PTHREAD_DESTRUCTOR_ITERATIONS rounds at most.
  auto rounds = reinterpret_cast<uintptr_t>(value);
  if (rounds > 1) {
    pthread_setspecific(g_exit_key, reinterpret_cast<void*>(rounds - 1));
    return;
  }
  os::ErrnoKeeper keep_errno;
  // Recorded even if the guard is already held: a thread cancelled inside a hook's real call
  // (pthread_join is a cancellation point) never ran that hook's guard release.
  HookScope scope;
  g_runtime.threads.Exited(pthread_self());
  g_runtime.reporter.ThreadExiting();
}

void ThreadsAfterForkChild() {
  g_runtime.threads.ResetAfterFork();
  g_table_pid.store(os::GetPid(), std::memory_order_relaxed);
}

}  // namespace

// ---- ThreadStartPool ----

ThreadStartPool::Slot* ThreadStartPool::Claim() {
  uint32_t start = cursor_.fetch_add(1, std::memory_order_relaxed);
  for (uint32_t i = 0; i < kSlots; ++i) {
    Slot& slot = slots_[(start + i) % kSlots];
    uint32_t expected = kFree;
    if (slot.phase.load(std::memory_order_relaxed) == kFree &&
        slot.phase.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire)) {
      return &slot;
    }
  }
  return nullptr;
}

void ThreadStartPool::Free(Slot* slot) { slot->phase.store(kFree, std::memory_order_release); }

bool ThreadStartPool::MarkRecorded(Slot* slot) {
  uint32_t phase = slot->phase.load(std::memory_order_acquire);
  for (;;) {
    if (phase == kAbandoned) {
      Free(slot);
      return false;
    }
    if (slot->phase.compare_exchange_weak(phase, kRecorded, std::memory_order_acq_rel)) {
      if (phase == kWaiting) os::FutexWakeAll(&slot->phase);
      return true;
    }
  }
}

bool ThreadStartPool::AwaitRecorded(Slot* slot, uint64_t timeout_ns) {
  // The creator is usually done already, or within a few hundred cycles.
  uint32_t phase = slot->phase.load(std::memory_order_acquire);
  for (int spin = 0; spin < 100 && phase == kClaimed; ++spin) {
    __builtin_ia32_pause();
    phase = slot->phase.load(std::memory_order_acquire);
  }
  if (phase == kRecorded) return true;
  if (phase == kClaimed &&
      !slot->phase.compare_exchange_strong(phase, kWaiting, std::memory_order_acq_rel)) {
    return phase == kRecorded;  // recorded just now
  }
  const uint64_t deadline = os::MonotonicNs() + timeout_ns;
  for (;;) {
    uint64_t now = os::MonotonicNs();
    if (now >= deadline) {
      uint32_t waiting = kWaiting;
      if (slot->phase.compare_exchange_strong(waiting, kAbandoned, std::memory_order_acq_rel)) {
        return false;
      }
      return true;  // recorded at the last moment
    }
    os::FutexWaitFor(&slot->phase, kWaiting, deadline - now);
    if (slot->phase.load(std::memory_order_acquire) == kRecorded) return true;
  }
}

void ThreadStartPool::ResetAfterFork() {
  // Written only where needed: every store to a page the child shares with its parent costs
  // the fork a copy-on-write fault.
  for (Slot& slot : slots_) {
    if (slot.phase.load(std::memory_order_relaxed) != kFree) {
      slot.phase.store(kFree, std::memory_order_relaxed);
    }
  }
}

uint32_t ThreadStartPool::InUseForTesting() const {
  uint32_t count = 0;
  for (const Slot& slot : slots_) count += slot.phase.load(std::memory_order_relaxed) != kFree;
  return count;
}

// ---- ScratchArray ----

template <typename T>
bool ScratchArray<T>::Grow() {
  size_t capacity = capacity_ == 0 ? 4096 / sizeof(T) : capacity_ * 2;
  T* grown = static_cast<T*>(os::MapPages(capacity * sizeof(T)));
  if (grown == nullptr) return false;
  if (size_ > 0) memcpy(static_cast<void*>(grown), data_, size_ * sizeof(T));
  os::UnmapPages(data_, capacity_ * sizeof(T));
  data_ = grown;
  capacity_ = capacity;
  return true;
}

// ---- ThreadTracker transitions ----

void ThreadTracker::Created(uint64_t thread, uint32_t site, bool detached) {
  handles_.Create(thread, site, detached ? kDetached : 0, 0);
}

void ThreadTracker::CreationUndone(uint64_t thread) {
  // Quietly: the thread may already have been released (it detached itself and exited).
  HandleTracker::Handle found;
  if (handles_.Lookup(thread, &found)) handles_.Release(thread);
}

void ThreadTracker::Started(uint64_t thread, uint32_t tid) {
  HandleTracker::Handle previous;
  handles_.UpdateState(
      thread, [&](uint64_t state) { return TidOf(state) == 0 ? state | tid : state; }, &previous);
}

void ThreadTracker::Exited(uint64_t thread) {
  HandleTracker::Handle previous;
  if (!handles_.UpdateState(
          thread, [](uint64_t state) { return state | kExited; }, &previous)) {
    return;  // not tracked (created before tracking, or untracked when the pool was full)
  }
  // Whoever sets the second of {exited, detached} releases the thread, exactly once.
  if ((previous.state & kExited) == 0 && (previous.state & kDetached) != 0) {
    handles_.Release(thread);
  }
}

void ThreadTracker::Detaching(uint64_t thread) {
  HandleTracker::Handle previous;
  if (!handles_.UpdateState(
          thread, [](uint64_t state) { return state | kDetached; }, &previous)) {
    return;
  }
  if ((previous.state & kExited) != 0 && (previous.state & kDetached) == 0) {
    handles_.Release(thread);
  }
}

uint64_t ThreadTracker::JoinTarget(uint64_t thread) const {
  HandleTracker::Handle found;
  if (!handles_.Lookup(thread, &found)) return 0;
  return found.state | kExited;  // non-zero even for a thread that has not started yet
}

void ThreadTracker::Joined(uint64_t thread, uint64_t target) {
  if (target == 0) return;  // untracked when the join began
  HandleTracker::Handle found;
  if (!handles_.Lookup(thread, &found)) return;
  // A thread joined is exited; an entry that is not, with another tid, is a new thread that
  // got the same pthread_t from glibc's stack cache between the real join and this record.
  uint32_t tid = TidOf(target);
  if ((found.state & kExited) == 0 && tid != 0 && TidOf(found.state) != tid) return;
  handles_.Release(thread);
}

void ThreadTracker::ResetAfterFork() {
  handles_.ForEach([&](uint64_t handle, HandleTracker::Handle) { handles_.Release(handle); });
  pool_.ResetAfterFork();
  candidates_.Clear();
  marks_.Clear();
}

// ---- Census side ----

void ThreadTracker::Reconcile(const uint32_t* tasks, size_t count, uint32_t census_tid,
                              uint32_t main_tid) {
  // Snapshot the table first, then compare with the tasks: a thread recorded after the
  // snapshot can only look unknown, which the two-census rule absorbs.
  tracked_.Clear();
  unattributed_.Clear();
  handles_.ForEach([&](uint64_t handle, HandleTracker::Handle entry) {
    if (handle >= kUnattributedBase) {
      unattributed_.Push(static_cast<uint32_t>(handle - kUnattributedBase));
    } else if ((entry.state & kExited) == 0 && TidOf(entry.state) != 0) {
      tracked_.Push(TrackedThread{handle, TidOf(entry.state)});
    }
  });
  tasks_.Clear();
  for (size_t i = 0; i < count; ++i) {
    if (tasks[i] != census_tid && tasks[i] != main_tid) tasks_.Push(tasks[i]);
  }
  std::sort(tasks_.begin(), tasks_.end());

  // Tracked threads whose task is gone exited without our key destructor (a raw exit
  // syscall): they are exited now. The update checks the tid, since the pthread_t may already
  // belong to a newer thread.
  for (const TrackedThread& thread : tracked_) {
    if (Contains(tasks_, thread.tid)) continue;
    HandleTracker::Handle previous;
    const uint32_t tid = thread.tid;
    bool found = handles_.UpdateState(
        thread.handle,
        [tid](uint64_t state) {
          return (state & kExited) == 0 && TidOf(state) == tid ? state | kExited : state;
        },
        &previous);
    if (found && (previous.state & kExited) == 0 && TidOf(previous.state) == tid &&
        (previous.state & kDetached) != 0) {
      handles_.Release(thread.handle);
    }
  }

  // Unattributed threads that are gone, or that turned out to be tracked after all.
  tracked_tids_.Clear();
  for (const TrackedThread& thread : tracked_) tracked_tids_.Push(thread.tid);
  std::sort(tracked_tids_.begin(), tracked_tids_.end());
  for (uint32_t tid : unattributed_) {
    if (!Contains(tasks_, tid) || Contains(tracked_tids_, tid)) {
      handles_.Release(kUnattributedBase + tid);
    }
  }
  std::sort(unattributed_.begin(), unattributed_.end());

  // Tasks nobody knows: unattributed threads once seen unknown twice in a row.
  next_candidates_.Clear();
  for (uint32_t tid : tasks_) {
    if (Contains(tracked_tids_, tid) || Contains(unattributed_, tid)) continue;
    if (Contains(candidates_, tid)) {
      handles_.Create(kUnattributedBase + tid, wire::kUnattributedSite, tid, 0);
    } else {
      next_candidates_.Push(tid);  // sorted, as tasks_ is
    }
  }
  candidates_.Swap(next_candidates_);
}

int ThreadTracker::InternWchan(const char* name) {
  size_t length = strlen(name);
  if (length == 0) return -1;
  for (int i = 0; i < wchan_count_; ++i) {
    if (wchans_[i].length == length && memcmp(wchans_[i].name, name, length) == 0) return i;
  }
  if (wchan_count_ == kMaxWchans || length >= sizeof(wchans_[0].name)) return -1;
  WchanName& added = wchans_[wchan_count_];
  memcpy(added.name, name, length);
  added.length = static_cast<uint32_t>(length);
  return wchan_count_++;
}

bool ThreadTracker::WriteStates(RecordWriter& writer, TaskProbe probe, uint64_t now_ns) {
  observations_.Clear();
  next_marks_.Clear();
  wchan_count_ = 0;
  handles_.ForEach([&](uint64_t handle, HandleTracker::Handle entry) {
    Observation observation{entry.site, kRunning, -1, 0};
    const bool tracked = handle < kUnattributedBase;
    const uint32_t tid =
        tracked ? TidOf(entry.state) : static_cast<uint32_t>(handle - kUnattributedBase);
    if (tracked && (entry.state & kExited) != 0) {
      observation.kind = kExitedUnjoined;  // its task is gone; only the stack remains
    } else if (tid != 0) {
      TaskSample sample;
      if (!probe(tid, &sample)) return;  // exited just now: the next census knows more
      observation.kind = KindOfState(sample.state);
      if (observation.kind == kSleeping || observation.kind == kDiskSleeping) {
        observation.wchan = static_cast<int8_t>(InternWchan(sample.wchan));
      }
      // No CPU progress since when? Remembered per tid from census to census.
      CpuMark mark{tid, sample.start_ticks, sample.cpu_ticks, now_ns};
      auto previous =
          std::lower_bound(marks_.begin(), marks_.end(), tid,
                           [](const CpuMark& m, uint32_t value) { return m.tid < value; });
      if (previous != marks_.end() && previous->tid == tid &&
          previous->start_ticks == sample.start_ticks && previous->cpu_ticks == sample.cpu_ticks) {
        mark.since_ns = previous->since_ns;
      }
      next_marks_.Push(mark);
      observation.idle_ns = now_ns - mark.since_ns;
    }  // else: between clone and its first record, i.e. running our trampoline
    observations_.Push(observation);
  });
  std::sort(next_marks_.begin(), next_marks_.end(),
            [](const CpuMark& a, const CpuMark& b) { return a.tid < b.tid; });
  marks_.Swap(next_marks_);
  std::sort(observations_.begin(), observations_.end(),
            [](const Observation& a, const Observation& b) { return a.site < b.site; });

  wire::ThreadStatesHeader header{0, 0};
  for (size_t i = 0; i < observations_.size(); ++i) {
    header.count += i == 0 || observations_[i].site != observations_[i - 1].site;
  }
  writer.Begin(wire::RecordType::kThreadStates);
  writer.Append(&header, sizeof(header));
  for (size_t begin = 0; begin < observations_.size();) {
    wire::ThreadSiteState state{};
    state.site_id = observations_[begin].site;
    uint32_t wchan_votes[kMaxWchans] = {};
    size_t end = begin;
    for (; end < observations_.size() && observations_[end].site == state.site_id; ++end) {
      const Observation& observation = observations_[end];
      uint32_t* counts[] = {&state.running, &state.sleeping, &state.disk_sleeping, &state.stopped,
                            &state.exited_unjoined};
      ++*counts[observation.kind];
      if (observation.wchan >= 0) ++wchan_votes[observation.wchan];
      if (observation.kind != kExitedUnjoined) {
        uint64_t idle_ms = observation.idle_ns / 1000000u;
        if (idle_ms > state.longest_idle_ms) state.longest_idle_ms = idle_ms;
        if (idle_ms > 60000) ++state.idle_over_minute;
      }
    }
    int wchan = -1;
    for (int i = 0; i < wchan_count_; ++i) {
      if (wchan_votes[i] > 0 && (wchan < 0 || wchan_votes[i] > wchan_votes[wchan])) wchan = i;
    }
    state.wchan_length = wchan >= 0 ? wchans_[wchan].length : 0;
    writer.Append(&state, sizeof(state));
    if (wchan >= 0) writer.Append(wchans_[wchan].name, state.wchan_length);
    begin = end;
  }
  return writer.End();
}

bool ProbeProcTask(uint32_t tid, TaskSample* sample) {
  char path[64];
  char text[512];
  TaskPath(path, tid, "stat");
  if (os::ReadSmallFile(path, text, sizeof(text)) <= 0) return false;
  // The command name (field 2) may contain spaces and ')': fields count from the last ')'.
  const char* cursor = strrchr(text, ')');
  if (cursor == nullptr || cursor[1] != ' ') return false;
  cursor += 2;
  sample->state = *cursor;
  SkipFields(cursor, 11);                          // now at field 14
  sample->cpu_ticks = os::ParseUnsigned(cursor);   // utime; now at 15
  sample->cpu_ticks += os::ParseUnsigned(cursor);  // stime; now at 16
  SkipFields(cursor, 6);                           // now at field 22
  sample->start_ticks = os::ParseUnsigned(cursor);
  sample->wchan[0] = '\0';
  if (sample->state == 'S' || sample->state == 'D') {
    TaskPath(path, tid, "wchan");
    ssize_t length = os::ReadSmallFile(path, sample->wchan, sizeof(sample->wchan));
    // "0": not blocked in a named kernel function (or addresses are hidden from us).
    if (length <= 0 || strcmp(sample->wchan, "0") == 0) sample->wchan[0] = '\0';
  }
  return true;
}

// ---- Hook events ----

bool InitThreadTracking() {
  uint32_t state = g_key_state.load(std::memory_order_acquire);
  if (state == kKeyReady) return true;
  if (state != kKeyNone ||
      !g_key_state.compare_exchange_strong(state, kKeyCreating, std::memory_order_acq_rel)) {
    // Another thread is creating it this very moment: this creation goes untracked (counted
    // through /proc) rather than waiting.
    return g_key_state.load(std::memory_order_acquire) == kKeyReady;
  }
  if (pthread_key_create(&g_exit_key, ExitKeyDestructor) != 0) {
    g_key_state.store(kKeyFailed, std::memory_order_release);
    return false;
  }
  pthread_atfork(nullptr, nullptr, ThreadsAfterForkChild);
  pid_t expected = 0;
  g_table_pid.compare_exchange_strong(expected, os::GetPid(), std::memory_order_relaxed);
  g_key_state.store(kKeyReady, std::memory_order_release);
  return true;
}

void WatchThisThreadsExit() {
  if (g_key_state.load(std::memory_order_acquire) != kKeyReady) return;
  // A non-null value is what makes glibc call the destructor at exit.
  pthread_setspecific(g_exit_key,
                      reinterpret_cast<void*>(uintptr_t{PTHREAD_DESTRUCTOR_ITERATIONS}));
}

ThreadStartPool::Slot* OnThreadCreating(ThreadStartPool::Routine routine, void* arg,
                                        const pthread_attr_t* attr) {
  os::ErrnoKeeper keep_errno;
  ThreadStartPool::Slot* slot = nullptr;
  if (InitThreadTracking()) slot = g_runtime.threads.pool().Claim();
  if (slot != nullptr) {
    int detach_state = PTHREAD_CREATE_JOINABLE;
    if (attr != nullptr) pthread_attr_getdetachstate(attr, &detach_state);
    slot->routine = routine;
    slot->arg = arg;
    slot->detached = detach_state == PTHREAD_CREATE_DETACHED;
    slot->site = CaptureSite();
  }
  return slot;
}

void OnThreadCreated(ThreadStartPool::Slot* slot, int error, pthread_t thread) {
  ThreadTracker& threads = g_runtime.threads;
  if (error != 0) {
    threads.pool().Free(slot);  // no thread runs the trampoline
    return;
  }
  os::ErrnoKeeper keep_errno;
  threads.Created(thread, slot->site, slot->detached);
  if (!threads.pool().MarkRecorded(slot)) threads.CreationUndone(thread);
}

void* ThreadTrampoline(void* opaque) {
  auto* slot = static_cast<ThreadStartPool::Slot*>(opaque);
  const ThreadStartPool::Routine routine = slot->routine;
  void* const arg = slot->arg;
  {
    os::ErrnoKeeper keep_errno;
    HookScope scope;
    ThreadTracker& threads = g_runtime.threads;
    if (threads.pool().AwaitRecorded(slot, ThreadTracker::kStartWaitNs)) {
      threads.pool().Free(slot);
      threads.Started(pthread_self(), static_cast<uint32_t>(os::GetTid()));
      WatchThisThreadsExit();
    }
  }
  // No guard and no handler of ours around the user's routine: pthread_exit and cancellation
  // unwind through this frame, and the key destructor sees the exit.
  return routine(arg);
}

void OnThreadDetaching(pthread_t thread) { g_runtime.threads.Detaching(thread); }

uint64_t OnThreadJoining(pthread_t thread) { return g_runtime.threads.JoinTarget(thread); }

void OnThreadJoined(pthread_t thread, uint64_t target) { g_runtime.threads.Joined(thread, target); }

void ReconcileThreads() {
  const pid_t pid = os::GetPid();
  pid_t table_pid = g_table_pid.load(std::memory_order_relaxed);
  if (table_pid != 0 && table_pid != pid) g_runtime.threads.ResetAfterFork();  // handler-less fork
  g_table_pid.store(pid, std::memory_order_relaxed);

  g_task_list.Clear();
  os::NumberedDirectory tasks("/proc/self/task");
  for (uint64_t tid; tasks.Next(&tid);) g_task_list.Push(static_cast<uint32_t>(tid));
  g_runtime.threads.Reconcile(g_task_list.begin(), g_task_list.size(),
                              static_cast<uint32_t>(os::GetTid()), static_cast<uint32_t>(pid));
}

bool WriteThreadStates(RecordWriter& writer) {
  return g_runtime.threads.WriteStates(writer, ProbeProcTask, os::MonotonicNs());
}

}  // namespace dw
