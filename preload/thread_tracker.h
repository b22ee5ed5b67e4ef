// thread_tracker.h: the tracker for threads, and the events the thread hooks report.
//
// A thread is live from its creation until it has both exited and been joined or detached: a
// joinable thread that returned but was never joined still holds its stack ("exited, unjoined").
// Threads made by the hooked pthread_create are keyed by their pthread_t and attributed to the
// creating call's stack; each entry's 40-bit state holds the kernel tid and the exited/detached
// flags. Threads no hook saw created (glibc's SIGEV_THREAD and AIO helpers, raw clone, threads
// made before tracking began or while the start pool was full) are found in /proc/self/task by
// the census thread and kept at the unattributed site, keyed by tid (docs/PITFALLS.md, section 6).
//
// Creation handshake. The hooked pthread_create starts ThreadTrampoline with a ThreadStartPool
// slot as its argument. The creating thread records the entry right after the real
// pthread_create succeeds (only then is the pthread_t known), and the new thread waits at its
// start, before any user code runs, until that record exists. Without the wait the new thread
// could detach itself, or exit, before its entry existed, and that event would be lost. The
// wait is normally nothing (the creator records within a microsecond of clone returning) and is
// bounded: if the creator is held up (a long signal handler, a longjmp out of one), the new
// thread gives up after kStartWaitNs, the creator later undoes its record, and the thread is
// then counted through /proc reconciliation instead: unattributed, never lost, never doubled.
//
// Exit detection: a pthread key whose destructor re-arms itself until the last destructor round
// (as LSan does), so that it runs after the target's own key destructors. It fires on return,
// pthread_exit and cancellation alike, so pthread_exit is not interposed.
//
// Thread-safety: the hook events (On*), ThreadTrampoline and the transition methods are
// lock-free and may run concurrently on any thread. Reconcile() and WriteStates() use
// census-private scratch memory and run on the census thread only (or a test's one thread).
// Allocation: never from the target's heap; the start pool is part of the (static) tracker,
// scratch memory is mmap'd. Safe inside a hook: the On* events, ThreadTrampoline and the
// transition methods, yes; Reconcile(), WriteStates() and the /proc readers, no.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/handle_tracker.h"
#include "preload/os.h"

namespace dw {

class RecordWriter;

// Argument blocks of starting threads: fixed-size, claimed by CAS, never from the target's heap.
class ThreadStartPool {
 public:
  static constexpr uint32_t kSlots = 4096;
  using Routine = void* (*)(void*);
  struct Slot {
    Routine routine = nullptr;
    void* arg = nullptr;
    uint32_t site = 0;  // the creating call's stack, captured before the real pthread_create
    bool detached = false;
    std::atomic<uint32_t> phase{0};
  };

  // A free slot, or nullptr when all are in use (the caller then creates the thread untracked).
  Slot* Claim();
  void Free(Slot* slot);

  // Creator: the thread's entry is recorded. After true the slot belongs to the new thread.
  // False if the new thread gave up waiting: the creator must undo its record; the slot is freed.
  bool MarkRecorded(Slot* slot);
  // New thread: waits (futex, bounded) until the creator recorded the entry. True when it did;
  // the caller then frees the slot. False after `timeout_ns`: the slot is left to the creator.
  bool AwaitRecorded(Slot* slot, uint64_t timeout_ns);

  // In a fork child: the threads that held slots do not exist there.
  void ResetAfterFork();
  uint32_t InUseForTesting() const;

 private:
  enum Phase : uint32_t { kFree, kClaimed, kWaiting, kRecorded, kAbandoned };

  Slot slots_[kSlots] = {};
  std::atomic<uint32_t> cursor_{0};
};

// What the census reads about one task in /proc/self/task/<tid>/.
struct TaskSample {
  char state = '?';          // field 3 of stat: R, S, D, T, t, Z, ...
  uint64_t cpu_ticks = 0;    // utime + stime (fields 14 and 15)
  uint64_t start_ticks = 0;  // field 22: tells a reused tid from the thread seen before
  char wchan[48] = {};       // for S and D only: the wait channel, "" if unknown
};
// Reads a task's sample; false if the task no longer exists.
using TaskProbe = bool (*)(uint32_t tid, TaskSample* sample);
bool ProbeProcTask(uint32_t tid, TaskSample* sample);

// A growable array in mmap'd memory, for census-private bookkeeping. T is trivially copyable.
template <typename T>
class ScratchArray {
 public:
  bool Push(const T& value) {
    if (size_ == capacity_ && !Grow()) return false;
    data_[size_++] = value;
    return true;
  }
  void Clear() { size_ = 0; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  void Swap(ScratchArray& other) {
    T* data = data_;
    size_t size = size_, capacity = capacity_;
    data_ = other.data_, size_ = other.size_, capacity_ = other.capacity_;
    other.data_ = data, other.size_ = size, other.capacity_ = capacity;
  }

 private:
  bool Grow();

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

class ThreadTracker {
 public:
  // Entry state: the tid in the low 32 bits (0 until the new thread has started), then flags.
  static constexpr uint64_t kTidMask = 0xffffffffu;
  static constexpr uint64_t kExited = uint64_t{1} << 32;
  static constexpr uint64_t kDetached = uint64_t{1} << 33;
  // Handles of threads known only from /proc: this base plus the tid. A pthread_t is a
  // user-space address (below 2^47), so the two key spaces never meet.
  static constexpr uint64_t kUnattributedBase = uint64_t{1} << 56;
  // How long a new thread waits for its creator's record (see the creation handshake above).
  static constexpr uint64_t kStartWaitNs = 250'000'000;

  bool Init(uint32_t max_sites) { return handles_.Init(max_sites, 64); }
  HandleTracker& handles() { return handles_; }
  const HandleTracker& handles() const { return handles_; }
  ThreadStartPool& pool() { return pool_; }

  // Transitions, from the hooks (any thread). `thread` is a pthread_t.
  void Created(uint64_t thread, uint32_t site, bool detached);
  // The creator's record is withdrawn (the new thread gave up waiting for it).
  void CreationUndone(uint64_t thread);
  void Started(uint64_t thread, uint32_t tid);
  void Exited(uint64_t thread);
  // Before the real pthread_detach, while `thread` cannot yet be reused.
  void Detaching(uint64_t thread);
  // Before a real join: the state that identifies the joined thread's entry (0 if untracked).
  uint64_t JoinTarget(uint64_t thread) const;
  // After a successful join. Releases the entry only if it is still the one JoinTarget saw, so
  // a pthread_t reused by a racing pthread_create keeps its new entry.
  void Joined(uint64_t thread, uint64_t target);

  // Census thread: reconciles with the tasks listed in /proc/self/task (any order). The census
  // thread itself and the main thread are not threads anyone created, and are skipped. A task
  // becomes an unattributed thread once it has been unknown in two censuses in a row, so a
  // thread between clone and its first record is never counted twice.
  void Reconcile(const uint32_t* tasks, size_t count, uint32_t census_tid, uint32_t main_tid);
  // Census thread: appends the ThreadStates record (what each site's live threads are doing).
  bool WriteStates(RecordWriter& writer, TaskProbe probe, uint64_t now_ns);

  // In a fork child (single-threaded): every entry belongs to a thread of the parent.
  void ResetAfterFork();

 private:
  struct TrackedThread {
    uint64_t handle;
    uint32_t tid;
  };
  struct CpuMark {
    uint32_t tid;
    uint64_t start_ticks;
    uint64_t cpu_ticks;
    uint64_t since_ns;  // when cpu_ticks last changed (or when first seen)
  };
  struct Observation {
    uint32_t site;
    uint8_t kind;  // an index into ThreadSiteState's counts, see WriteStates
    int8_t wchan;  // an index into wchans_, or -1
    uint64_t idle_ns;
  };
  struct WchanName {
    char name[48];
    uint32_t length;
  };
  static constexpr int kMaxWchans = 32;

  int InternWchan(const char* name);

  HandleTracker handles_;
  ThreadStartPool pool_;
  // Census-private.
  ScratchArray<TrackedThread> tracked_;
  ScratchArray<uint32_t> tasks_, tracked_tids_, unattributed_, candidates_, next_candidates_;
  ScratchArray<CpuMark> marks_, next_marks_;
  ScratchArray<Observation> observations_;
  WchanName wchans_[kMaxWchans] = {};
  int wchan_count_ = 0;
};

// Creates the exit-detection key and registers the fork handler. Idempotent and lock-free;
// best called once at start-up (InitRuntime), otherwise done lazily by the first creation.
bool InitThreadTracking();
// Makes the calling thread's exit (pthread_exit, cancellation) reach the key destructor, as
// threads created through the hook do; for the main thread, called once at start-up.
void WatchThisThreadsExit();

// Census-thread reconciliation with /proc/self/task (a CensusSources reconciler).
void ReconcileThreads();
// Appends the ThreadStates record (a CensusSources record writer).
bool WriteThreadStates(RecordWriter& writer);

}  // namespace dw
