// reporter.h: the census lifecycle: when the census thread starts, what fork, vfork and exit do
// to it, and when it ends. The encoder (census_encoder.h) makes the bytes and the connection
// (census_connection.h) sends them; this file only decides when.
//
// The rules, each from a program that broke without it (docs/ARCHITECTURE.md, "Lifecycle"):
// - The census thread starts with the process, so that an idle process reports too. It steps
//   aside while the program makes a call that needs a single-threaded process
//   (unshare(CLONE_NEWUSER), setns: unshare, bwrap, sandboxes) and comes back one interval
//   later. A fork child starts its own one interval after the fork, from its first hook event
//   (most children exec or exit first); one that stays quiet reports at its exit or _exit.
// - It never keeps a process alive: when main has called pthread_exit and every other thread
//   is gone, it returns, and glibc ends the process as it would have without it.
// - It works in a descriptor table of its own, so it takes no fd number from the program.
// - The target never waits for it: fork takes no lock; exit waits for the final census at most
//   kFinalFlushMs, once; a fork child younger than one interval sends nothing at exit.
// - Every path that could send checks that this is still the process the state belongs to: a
//   child made without fork handlers (_Fork, clone) or a vfork child sends nothing.
//
// Thread-safety: the public functions may run on any thread. Allocation: none from the target's
// heap; starting the thread makes glibc allocate, with the hook guard held.
// Safe inside a hook: start_pending/StartIfDue/ThreadExiting, yes; the rest, no.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "preload/census_connection.h"
#include "preload/census_encoder.h"
#include "preload/os.h"

namespace dw {

class Reporter {
 public:
  struct Config {
    const char* socket_path = "";
    uint32_t interval_ms = 1000;
    uint16_t depth = 0;
    uid_t startup_uid = 0;
  };

  // Prepares the census and starts the census thread. False if memory could not be mapped or
  // the thread not started (the shim then stays passive).
  bool Init(const Config& config, const CensusSources& sources);

  // After a failed Init: unmaps what Init mapped.
  void ReleaseMemory() { encoder_.ReleaseMemory(); }

  // Hooks call StartIfDue() when start_pending() says so; it brings back a census thread that
  // stepped aside, once it is due.
  bool start_pending() const { return deferred_start_ns_.load(std::memory_order_relaxed) != 0; }
  // The word behind start_pending(), for HeapGate, which reads it inline on every allocation.
  const std::atomic<uint64_t>* start_pending_word() const { return &deferred_start_ns_; }
  void StartIfDue();

  // The exit path, after every library destructor (or _exit): sends a last census marked
  // final, waiting at most kFinalFlushMs for the collector to take it. Later censuses are not
  // sent.
  void FinalFlush();

  // pthread_atfork child handler: the child forgets the parent's connection and starts its own
  // census thread, so each process reports under its own identity.
  void ChildAfterFork();

  // The thread-exit key's destructor, on every exiting thread: once main has exited, the
  // census thread checks whether it is the last thread left.
  void ThreadExiting();

  // Around a call that needs this process single-threaded: StepAside() stops the census thread
  // and waits until its task is gone (true if it was running); Return() brings it back one
  // interval later.
  bool StepAside();
  void Return();

  // The census socket's number in the program's table, or -1 (fd reconciliation skips it).
  int census_socket_fd() const { return connection_.fd_in_program_table(); }

  uint64_t censuses_dropped() const { return censuses_dropped_.load(std::memory_order_relaxed); }

 private:
  enum Phase : uint32_t { kActive, kFinalRequested, kFinished };

  static void* ThreadMain(void* self);
  bool StartThread();
  void Loop();
  // One census, sent until `deadline_ns` at most.
  void Tick(bool final, uint64_t deadline_ns);
  void SendFinal();
  void WaitForFinal();
  // How long the census thread may sleep: until the next census, or briefly while the last
  // threads of a process whose main has exited are going.
  uint64_t WakeTime(uint64_t next_census_ns) const;
  bool OnlyThreadLeft() const;

  CensusEncoder encoder_;
  CensusConnection connection_;
  os::PageBuffer out_;  // bytes not yet accepted by the socket
  uint32_t interval_ms_ = 1000;

  // The process the tables describe, and whether it began as a fork child (and when).
  pid_t owner_pid_ = 0;
  bool fork_child_ = false;
  uint64_t reporting_since_ns_ = 0;

  std::atomic<uint64_t> deferred_start_ns_{0};  // 0: no start pending
  std::atomic<uint32_t> thread_running_{0};     // futex word: 1 while the census thread runs
  std::atomic<bool> step_aside_{false};
  std::atomic<pid_t> census_tid_{0};
  std::atomic<uint32_t> wake_{0};  // futex word: bumped to wake the census thread
  std::atomic<uint32_t> phase_{kActive};
  std::atomic<uint64_t> final_deadline_ns_{0};
  std::atomic<bool> main_exited_{false};
  std::atomic<uint64_t> watch_threads_until_ns_{0};
  std::atomic<uint64_t> censuses_dropped_{0};
};

}  // namespace dw
