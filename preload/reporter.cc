#include "preload/reporter.h"

#include <pthread.h>
#include <signal.h>

#include "preload/raw_log.h"
#include "preload/thread_state.h"

namespace dw {
namespace {

// The final census may delay exit() by this much at most when the collector is slow.
constexpr uint64_t kFinalFlushNs = 250'000'000;
// After a thread exits in a process whose main thread is gone, the census thread looks at the
// thread count this often, for this long, so the process ends promptly once it is alone.
constexpr uint64_t kLastThreadPollNs = 2'000'000;
constexpr uint64_t kLastThreadWatchNs = 100'000'000;
// A census still being sent is sent in slices of this length, between which the census thread
// looks at its requests (final census, step aside).
constexpr uint64_t kDrainSliceNs = 20'000'000;
// A census buffer larger than this is unmapped once its census is sent.
constexpr size_t kKeptBufferBytes = 8u << 20;

constexpr uint64_t Ms(uint32_t ms) { return uint64_t{ms} * 1000000u; }

}  // namespace

bool Reporter::Init(const Config& config, const CensusSources& sources) {
  interval_ms_ = config.interval_ms;
  connection_.Configure(config.socket_path, config.interval_ms, config.startup_uid);
  if (!encoder_.Init(sources, config.interval_ms, config.depth)) {
    phase_.store(kFinished, std::memory_order_relaxed);  // a half-initialised reporter never sends
    return false;
  }
  owner_pid_ = os::GetPid();
  reporting_since_ns_ = os::MonotonicNs();
  if (!StartThread()) {
    phase_.store(kFinished, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Reporter::StartIfDue() {
  uint64_t due = deferred_start_ns_.load(std::memory_order_relaxed);
  if (due == 0 || os::MonotonicNs() < due) return;
  if (!deferred_start_ns_.compare_exchange_strong(due, 0, std::memory_order_relaxed)) return;
  // A child made without fork handlers inherited a pending start: it is not the process this
  // state describes, and stays silent.
  if (os::GetPid() != owner_pid_ || phase_.load(std::memory_order_acquire) != kActive) return;
  StartThread();
}

bool Reporter::StartThread() {
  // All signals blocked in the census thread: a target that routes signals to one thread of
  // its choosing must never see them delivered to ours (heaptrack, KDE bug 378494).
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 256 * 1024);
  thread_running_.store(1, std::memory_order_release);
  pthread_t thread;
  int error = pthread_create(&thread, &attributes, &Reporter::ThreadMain, this);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (error != 0) {
    thread_running_.store(0, std::memory_order_release);
    DW_LOG(kError, "cannot start the census thread (error " << error << "); not reporting");
    return false;
  }
  return true;
}

void* Reporter::ThreadMain(void* self) {
  t_state.internal_thread = true;
  auto* reporter = static_cast<Reporter*>(self);
  reporter->census_tid_.store(os::GetTid(), std::memory_order_relaxed);
  pthread_setname_np(pthread_self(), "driftwatch");
  // Without a private table the thread still works, its descriptors moved high instead.
  os::TakePrivateFdTable();
  reporter->Loop();
  return nullptr;
}

void Reporter::Loop() {
  uint64_t next = os::MonotonicNs() + Ms(interval_ms_);
  for (;;) {
    const uint32_t seen = wake_.load(std::memory_order_acquire);
    if (phase_.load(std::memory_order_acquire) == kFinalRequested) {
      SendFinal();
      return;
    }
    if (step_aside_.load(std::memory_order_acquire)) {
      thread_running_.store(0, std::memory_order_release);
      os::FutexWakeAll(&thread_running_);
      return;
    }
    if (main_exited_.load(std::memory_order_acquire) && OnlyThreadLeft()) {
      // Returning makes glibc run exit(0), as the last user thread's exit would have; the
      // final census then goes out from the exit path, on this thread.
      thread_running_.store(0, std::memory_order_release);
      return;
    }
    const uint64_t now = os::MonotonicNs();
    if (now >= next) {
      Tick(/*final=*/false, now);
      next += Ms(interval_ms_);
      // After a long stall (suspended process), skip the missed ticks instead of bursting.
      if (os::MonotonicNs() > next) next = os::MonotonicNs() + Ms(interval_ms_);
    }
    if (out_.size() > 0 && connection_.connected()) {
      // A census larger than the socket buffer (100k stacks: megabytes) goes out as the
      // collector reads it, in slices short enough to answer a final census or a step-aside
      // request at once, rather than one socket buffer per tick (which let a census take
      // longer than many intervals, and every census meanwhile was dropped).
      const uint64_t slice_end = os::MonotonicNs() + kDrainSliceNs;
      connection_.Flush(out_, slice_end < next ? slice_end : next);
      // The first census defines every stack (25 MB for 150k of them); later ones carry the
      // changes only. A buffer that large goes back to the kernel once sent, rather than stay
      // in the program's RSS for good.
      if (out_.size() == 0 && out_.capacity() > kKeptBufferBytes) out_.Release();
      continue;
    }
    os::FutexWaitUntil(&wake_, seen, WakeTime(next));
  }
}

uint64_t Reporter::WakeTime(uint64_t next_census_ns) const {
  const uint64_t now = os::MonotonicNs();
  if (main_exited_.load(std::memory_order_relaxed) &&
      now < watch_threads_until_ns_.load(std::memory_order_relaxed)) {
    const uint64_t soon = now + kLastThreadPollNs;
    return soon < next_census_ns ? soon : next_census_ns;
  }
  return next_census_ns;
}

bool Reporter::OnlyThreadLeft() const {
  // A main thread that has exited stays in the count, a zombie, until the whole process ends.
  os::ProcessStat stat;
  return os::ReadProcessStat(stat) && stat.threads == 2;
}

void Reporter::Tick(bool final, uint64_t deadline_ns) {
  if (connection_.Connect()) {
    out_.Clear();  // anything left was meant for the previous collector
    encoder_.NewConnection();
    if (!encoder_.AppendHello(out_)) connection_.Disconnect();
  }
  if (!connection_.connected()) {
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A census still partly unsent means the collector is slow: drop this one rather than queue.
  if (out_.size() > 0 && (!connection_.Flush(out_, deadline_ns) || out_.size() > 0)) {
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!encoder_.AppendCensus(out_, final, censuses_dropped())) {
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    connection_.Disconnect();
    return;
  }
  connection_.Flush(out_, deadline_ns);
}

void Reporter::SendFinal() {
  Tick(/*final=*/true, final_deadline_ns_.load(std::memory_order_relaxed));
  phase_.store(kFinished, std::memory_order_release);
  os::FutexWakeAll(&phase_);
}

void Reporter::FinalFlush() {
  // A vfork child runs on its parent's memory; a child made without fork handlers (_Fork,
  // clone) has its parent's connection state. Neither may touch it.
  if (t_state.in_vfork || os::GetPid() != owner_pid_) return;
  uint32_t expected = kActive;
  if (!phase_.compare_exchange_strong(expected, kFinalRequested, std::memory_order_acq_rel)) {
    return;  // once per process
  }
  deferred_start_ns_.store(0, std::memory_order_relaxed);
  if (fork_child_ && os::MonotonicNs() - reporting_since_ns_ < Ms(interval_ms_)) {
    // A fork child younger than one interval (a prefork worker's early exit, a helper before
    // exec): one census shows no drift, and fork+exit must stay cheap.
    phase_.store(kFinished, std::memory_order_release);
    return;
  }
  final_deadline_ns_.store(os::MonotonicNs() + kFinalFlushNs, std::memory_order_relaxed);
  if (t_state.internal_thread) {
    SendFinal();  // exit() called on the census thread: it was the last thread
  } else if (thread_running_.load(std::memory_order_acquire) != 0) {
    WaitForFinal();  // the census thread owns the connection: it sends, we wait
  } else {
    SendFinal();  // no census thread now (stepped aside, or never started): from this thread
  }
}

void Reporter::WaitForFinal() {
  wake_.fetch_add(1, std::memory_order_release);
  os::FutexWakeAll(&wake_);
  const uint64_t deadline = final_deadline_ns_.load(std::memory_order_relaxed);
  while (phase_.load(std::memory_order_acquire) == kFinalRequested &&
         os::MonotonicNs() < deadline) {
    os::FutexWaitUntil(&phase_, kFinalRequested, deadline);
  }
}

void Reporter::ChildAfterFork() {
  // The parent's census thread does not exist here, and it may have been mid-census when the
  // fork copied its state: everything it owned is forgotten, nothing is waited for.
  owner_pid_ = os::GetPid();
  fork_child_ = true;
  reporting_since_ns_ = os::MonotonicNs();
  thread_running_.store(0, std::memory_order_relaxed);
  step_aside_.store(false, std::memory_order_relaxed);
  main_exited_.store(false, std::memory_order_relaxed);
  wake_.store(0, std::memory_order_relaxed);
  connection_.ForgetAfterFork();
  out_.Forget();
  encoder_.ForgetAfterFork();
  censuses_dropped_.store(0, std::memory_order_relaxed);
  // Not started here: most children exec or exit within an interval, and a thread would cost
  // each fork its creation and teardown. It starts from the first hook event one interval
  // later; a child quiet until its exit (or _exit) sends its census then.
  if (phase_.load(std::memory_order_relaxed) == kActive) {
    deferred_start_ns_.store(reporting_since_ns_ + Ms(interval_ms_), std::memory_order_relaxed);
  }
}

bool Reporter::StepAside() {
  if (thread_running_.load(std::memory_order_acquire) == 0 || t_state.internal_thread) return false;
  step_aside_.store(true, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_release);
  os::FutexWakeAll(&wake_);
  // Bounded: a census in progress finishes in milliseconds; past a second the caller's call
  // goes ahead anyway (and fails as it would have).
  const uint64_t deadline = os::MonotonicNs() + 1'000'000'000u;
  while (thread_running_.load(std::memory_order_acquire) != 0 && os::MonotonicNs() < deadline) {
    os::FutexWaitUntil(&thread_running_, 1, deadline);
  }
  // The thread has returned; its task leaves the thread group a moment later.
  const pid_t tid = census_tid_.load(std::memory_order_relaxed);
  while (tid != 0 && os::TaskExists(tid) && os::MonotonicNs() < deadline) os::SleepNs(100'000);
  return true;
}

void Reporter::Return() {
  step_aside_.store(false, std::memory_order_release);
  if (phase_.load(std::memory_order_acquire) != kActive) return;
  deferred_start_ns_.store(os::MonotonicNs() + Ms(interval_ms_), std::memory_order_relaxed);
}

void Reporter::ThreadExiting() {
  if (os::GetTid() == os::GetPid()) main_exited_.store(true, std::memory_order_release);
  if (!main_exited_.load(std::memory_order_acquire) ||
      thread_running_.load(std::memory_order_acquire) == 0) {
    return;
  }
  watch_threads_until_ns_.store(os::MonotonicNs() + kLastThreadWatchNs, std::memory_order_relaxed);
  wake_.fetch_add(1, std::memory_order_release);
  os::FutexWakeAll(&wake_);
}

}  // namespace dw
