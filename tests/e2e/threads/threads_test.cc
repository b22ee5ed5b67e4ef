// Thread census figures from real programs under the real shim, read through the collector.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

using e2e::OnlyProcess;
using e2e::RunProgram;

struct Totals {
  int64_t live = 0;
  uint64_t acquired = 0, released = 0;
  ThreadSiteState states;  // summed over the sites
  bool has_states = false;
};

void AddStates(const SiteReport& site, Totals& totals) {
  if (!site.thread_state.has_value()) return;
  const ThreadSiteState& state = *site.thread_state;
  totals.has_states = true;
  totals.states.running += state.running;
  totals.states.sleeping += state.sleeping;
  totals.states.disk_sleeping += state.disk_sleeping;
  totals.states.stopped += state.stopped;
  totals.states.exited_unjoined += state.exited_unjoined;
  if (totals.states.wchan.empty()) totals.states.wchan = state.wchan;
}

// Sums the thread sites whose stack passes through `function`.
Totals ThreadsAt(const ProcessReport& process, const std::string& function) {
  Totals totals;
  for (const SiteReport* site : FindSitesByFunction(process, function, wire::Kind::kThreads)) {
    totals.live += site->live;
    totals.acquired += site->counters.acquired;
    totals.released += site->counters.released;
    AddStates(*site, totals);
  }
  return totals;
}

Totals Unattributed(const ProcessReport& process) {
  Totals totals;
  if (const SiteReport* site = process.FindSite(wire::Kind::kThreads, wire::kUnattributedSite)) {
    totals.live = site->live;
    totals.acquired = site->counters.acquired;
    totals.released = site->counters.released;
    AddStates(*site, totals);
  }
  return totals;
}

TEST(ThreadsTest, EveryWayAThreadEnds) {
  RunResult result = RunProgram("e2e_threads_lifecycle");  // exit 0: values and codes intact
  const ProcessReport& process = OnlyProcess(result);
  Totals joined = ThreadsAt(process, "create_joined");
  EXPECT_EQ(joined.acquired, 50u);
  EXPECT_EQ(joined.live, 0);
  Totals detached = ThreadsAt(process, "create_detached");
  EXPECT_EQ(detached.acquired, 30u);
  EXPECT_EQ(detached.live, 0);
  Totals exiting = ThreadsAt(process, "create_exiting");
  EXPECT_EQ(exiting.acquired, 5u);
  EXPECT_EQ(exiting.live, 0);
  Totals cancelled = ThreadsAt(process, "create_cancelled");
  EXPECT_EQ(cancelled.acquired, 5u);
  EXPECT_EQ(cancelled.live, 0);
  Totals unjoined = ThreadsAt(process, "create_unjoined");
  EXPECT_EQ(unjoined.acquired, 7u);
  EXPECT_EQ(unjoined.live, 7) << "returned but never joined: their stacks are still held";
  ASSERT_TRUE(unjoined.has_states) << "no ThreadStates entry for create_unjoined's site";
  EXPECT_EQ(unjoined.states.exited_unjoined, 7u);
  EXPECT_EQ(Unattributed(process).live, 0) << "a tracked thread was also counted from /proc";
  // process.totals.untracked_releases is not asserted here: it sums every kind, and glibc frees
  // the dynamic-TLS blocks of the shim's unwinder (allocated under the guard in threads that
  // called malloc while exiting) when it reuses their cached stack in pthread_create.
}

TEST(ThreadsTest, CancellationAndExitThroughCxxFrames) {
  RunResult result = RunProgram("e2e_threads_cancel_cxx");  // exit 0: destructors ran
  const ProcessReport& process = OnlyProcess(result);
  Totals at = ThreadsAt(process, "cancel_in_cxx");
  EXPECT_EQ(at.acquired, 8u);
  EXPECT_EQ(at.live, 0);
}

TEST(ThreadsTest, ParkedThreadsAreLiveAndSleepingOnAFutex) {
  RunResult result = RunProgram("e2e_threads_parked", {"6", "0.8"});
  const ProcessReport& process = OnlyProcess(result);
  Totals at = ThreadsAt(process, "spawn_worker");
  EXPECT_EQ(at.acquired, 6u);
  EXPECT_EQ(at.live, 6);
  ASSERT_TRUE(at.has_states) << "no ThreadStates entry for spawn_worker's site";
  EXPECT_EQ(at.states.sleeping, 6u);
  EXPECT_NE(at.states.wchan.find("futex"), std::string::npos) << at.states.wchan;
  EXPECT_EQ(Unattributed(process).live, 0);
}

TEST(ThreadsTest, SigevThreadTimerThreadsAreCountedUnattributed) {
  RunResult result = RunProgram("e2e_threads_sigev_timer");
  const ProcessReport& process = OnlyProcess(result);
  // glibc's helper thread and the blocked notification thread: made inside libc, where the
  // pthread_create hook cannot see them, so found in /proc/self/task instead. Never lost.
  Totals unattributed = Unattributed(process);
  EXPECT_EQ(unattributed.live, 2);
  if (unattributed.has_states) {
    EXPECT_EQ(unattributed.states.sleeping, 2u);
  }
  EXPECT_EQ(ThreadsAt(process, "start_thread_timer").acquired, 0u);
}

TEST(ThreadsTest, ChurnLeavesNothingLive) {
  RunResult result = RunProgram("e2e_threads_churn");
  const ProcessReport& process = OnlyProcess(result);
  Totals at = ThreadsAt(process, "churn_threads");
  EXPECT_EQ(at.acquired, 25000u);
  EXPECT_EQ(at.released, 25000u);
  EXPECT_EQ(at.live, 0);
  EXPECT_EQ(Unattributed(process).live, 0);
  // These threads never allocate, so no kind may have seen a release it did not see created.
  EXPECT_EQ(process.totals.untracked_releases, 0u);
  EXPECT_EQ(process.totals.table_overflowed, 0u);
}

TEST(ThreadsTest, ForkChildForgetsTheParentsThreads) {
  RunResult result = RunProgram("e2e_threads_fork");
  ASSERT_EQ(result.processes.size(), 2u);
  for (const ProcessReport& process : result.processes) {
    EXPECT_TRUE(process.saw_final) << process.identity.pid;
    if (process.identity.pid == static_cast<uint32_t>(result.child_pid)) {
      EXPECT_EQ(ThreadsAt(process, "parent_threads").live, 4);
      EXPECT_EQ(ThreadsAt(process, "child_threads").acquired, 0u);
    } else {
      EXPECT_EQ(ThreadsAt(process, "parent_threads").live, 0) << "the parent's, not the child's";
      Totals child = ThreadsAt(process, "child_threads");
      EXPECT_EQ(child.acquired, 4u);
      EXPECT_EQ(child.live, 3);
    }
    EXPECT_EQ(Unattributed(process).live, 0) << process.identity.pid;
  }
}

}  // namespace
}  // namespace dw::report
