// ThreadTracker without LD_PRELOAD: the start pool and its handshake, the state transitions of
// a thread entry, reconciliation with a task list, and the ThreadStates record.
#include "preload/thread_tracker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "preload/record_writer.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

constexpr uint32_t kSiteA = 7;
constexpr uint32_t kSiteB = 9;
constexpr uint64_t kThreadA = 0x7f0000001000;  // pthread_t values are addresses
constexpr uint64_t kThreadB = 0x7f0000002000;
constexpr uint64_t kMs = 1000000;

class ThreadTrackerTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tracker_->Init(1024)); }

  int64_t Live(uint32_t site) const {
    SiteCounters::Snapshot counters = tracker_->handles().counters().Read(site);
    return static_cast<int64_t>(counters.acquired - counters.released);
  }
  uint64_t StateOf(uint64_t thread) const {
    HandleTracker::Handle found{};
    EXPECT_TRUE(tracker_->handles().Lookup(thread, &found));
    return found.state;
  }

  // Large (the pool is 4096 slots), so not on the stack.
  std::unique_ptr<ThreadTracker> tracker_ = std::make_unique<ThreadTracker>();
};

TEST_F(ThreadTrackerTest, PoolClaimsEverySlotOnceThenRunsOut) {
  ThreadStartPool& pool = tracker_->pool();
  std::vector<ThreadStartPool::Slot*> slots;
  for (uint32_t i = 0; i < ThreadStartPool::kSlots; ++i) {
    ThreadStartPool::Slot* slot = pool.Claim();
    ASSERT_NE(slot, nullptr) << i;
    slots.push_back(slot);
  }
  EXPECT_EQ(pool.Claim(), nullptr);
  EXPECT_EQ(pool.InUseForTesting(), ThreadStartPool::kSlots);
  pool.Free(slots[1234]);
  EXPECT_EQ(pool.Claim(), slots[1234]);
  for (ThreadStartPool::Slot* slot : slots) pool.Free(slot);
  EXPECT_EQ(pool.InUseForTesting(), 0u);
}

TEST_F(ThreadTrackerTest, PoolClaimsAreExclusiveAcrossThreads) {
  ThreadStartPool& pool = tracker_->pool();
  constexpr int kThreads = 4, kRounds = 20000;
  std::atomic<int> collisions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        ThreadStartPool::Slot* slot = pool.Claim();
        ASSERT_NE(slot, nullptr);
        slot->arg = reinterpret_cast<void*>(uintptr_t(t + 1));
        if (slot->arg != reinterpret_cast<void*>(uintptr_t(t + 1))) ++collisions;
        pool.Free(slot);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(collisions.load(), 0);
  EXPECT_EQ(pool.InUseForTesting(), 0u);
}

TEST_F(ThreadTrackerTest, StartWaitsForTheCreatorsRecord) {
  ThreadStartPool& pool = tracker_->pool();
  // Recorded first: the new thread does not wait.
  ThreadStartPool::Slot* slot = pool.Claim();
  EXPECT_TRUE(pool.MarkRecorded(slot));
  EXPECT_TRUE(pool.AwaitRecorded(slot, 0));
  pool.Free(slot);

  // The new thread first: it sleeps until the creator records.
  slot = pool.Claim();
  std::atomic<bool> started{false};
  bool recorded = false;
  std::thread starter([&] {
    started = true;
    recorded = pool.AwaitRecorded(slot, 10'000 * kMs);
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(pool.MarkRecorded(slot));
  starter.join();
  EXPECT_TRUE(recorded);
  pool.Free(slot);
  EXPECT_EQ(pool.InUseForTesting(), 0u);
}

TEST_F(ThreadTrackerTest, CreatorTooLateUndoesItsRecord) {
  ThreadStartPool& pool = tracker_->pool();
  ThreadStartPool::Slot* slot = pool.Claim();
  EXPECT_FALSE(pool.AwaitRecorded(slot, 1 * kMs));  // gave up: the slot stays the creator's
  EXPECT_EQ(pool.InUseForTesting(), 1u);
  tracker_->Created(kThreadA, kSiteA, false);
  EXPECT_FALSE(pool.MarkRecorded(slot));  // so the creator undoes, and frees the slot
  tracker_->CreationUndone(kThreadA);
  EXPECT_EQ(pool.InUseForTesting(), 0u);
  EXPECT_EQ(Live(kSiteA), 0);
}

TEST_F(ThreadTrackerTest, JoinableThreadLivesUntilJoined) {
  tracker_->Created(kThreadA, kSiteA, /*detached=*/false);
  tracker_->Started(kThreadA, 4242);
  EXPECT_EQ(StateOf(kThreadA) & ThreadTracker::kTidMask, 4242u);
  uint64_t target = tracker_->JoinTarget(kThreadA);
  tracker_->Exited(kThreadA);
  EXPECT_EQ(Live(kSiteA), 1) << "exited but not joined: its stack is still held";
  EXPECT_NE(StateOf(kThreadA) & ThreadTracker::kExited, 0u);
  tracker_->Joined(kThreadA, target);
  EXPECT_EQ(Live(kSiteA), 0);
  EXPECT_EQ(tracker_->handles().untracked_releases(), 0u);
}

TEST_F(ThreadTrackerTest, DetachedThreadIsReleasedAtExitWhicheverComesFirst) {
  tracker_->Created(kThreadA, kSiteA, /*detached=*/true);  // by attribute
  tracker_->Started(kThreadA, 1);
  tracker_->Exited(kThreadA);
  EXPECT_EQ(Live(kSiteA), 0);

  tracker_->Created(kThreadA, kSiteA, false);  // detached, then exits
  tracker_->Detaching(kThreadA);
  EXPECT_EQ(Live(kSiteA), 1);
  tracker_->Exited(kThreadA);
  EXPECT_EQ(Live(kSiteA), 0);

  tracker_->Created(kThreadA, kSiteA, false);  // exits, then detached
  tracker_->Exited(kThreadA);
  EXPECT_EQ(Live(kSiteA), 1);
  tracker_->Detaching(kThreadA);
  EXPECT_EQ(Live(kSiteA), 0);
  EXPECT_EQ(tracker_->handles().untracked_releases(), 0u);
}

TEST_F(ThreadTrackerTest, JoinDoesNotReleaseAReusedPthreadT) {
  tracker_->Created(kThreadA, kSiteA, false);
  tracker_->Started(kThreadA, 100);
  uint64_t target = tracker_->JoinTarget(kThreadA);
  tracker_->Exited(kThreadA);
  // Between the real join and its record, glibc hands the same pthread_t to a new thread.
  tracker_->Created(kThreadA, kSiteB, false);
  tracker_->Started(kThreadA, 101);
  tracker_->Joined(kThreadA, target);
  EXPECT_EQ(Live(kSiteA), 0);  // released when the new entry replaced it
  EXPECT_EQ(Live(kSiteB), 1);  // the new thread is untouched
}

TEST_F(ThreadTrackerTest, EventsOnUntrackedThreadsAreIgnored) {
  tracker_->Exited(kThreadB);
  tracker_->Detaching(kThreadB);
  EXPECT_EQ(tracker_->JoinTarget(kThreadB), 0u);
  tracker_->Joined(kThreadB, 0);
  EXPECT_EQ(tracker_->handles().untracked_releases(), 0u);
}

TEST_F(ThreadTrackerTest, ReconcileCountsUnknownTasksAfterTwoCensuses) {
  constexpr uint32_t kMain = 10, kCensus = 11, kTracked = 12, kHelper = 13;
  tracker_->Created(kThreadA, kSiteA, false);
  tracker_->Started(kThreadA, kTracked);
  const uint32_t tasks[] = {kMain, kCensus, kTracked, kHelper};
  tracker_->Reconcile(tasks, 4, kCensus, kMain);
  EXPECT_EQ(Live(wire::kUnattributedSite), 0) << "unknown once: maybe a thread still starting";
  tracker_->Reconcile(tasks, 4, kCensus, kMain);
  EXPECT_EQ(Live(wire::kUnattributedSite), 1) << "the helper, and only it";
  tracker_->Reconcile(tasks, 4, kCensus, kMain);
  EXPECT_EQ(Live(wire::kUnattributedSite), 1) << "counted once";
  EXPECT_EQ(Live(kSiteA), 1);
  // The helper exits: released.
  const uint32_t without_helper[] = {kMain, kCensus, kTracked};
  tracker_->Reconcile(without_helper, 3, kCensus, kMain);
  EXPECT_EQ(Live(wire::kUnattributedSite), 0);
}

TEST_F(ThreadTrackerTest, ReconcileMarksVanishedTrackedThreadsExited) {
  constexpr uint32_t kMain = 10, kCensus = 11;
  tracker_->Created(kThreadA, kSiteA, false);  // joinable: stays as exited-unjoined
  tracker_->Started(kThreadA, 20);
  tracker_->Created(kThreadB, kSiteB, true);  // detached: gone
  tracker_->Started(kThreadB, 21);
  const uint32_t tasks[] = {kMain, kCensus};
  tracker_->Reconcile(tasks, 2, kCensus, kMain);
  EXPECT_EQ(Live(kSiteA), 1);
  EXPECT_NE(StateOf(kThreadA) & ThreadTracker::kExited, 0u);
  EXPECT_EQ(Live(kSiteB), 0);
  EXPECT_EQ(Live(wire::kUnattributedSite), 0);
}

TEST_F(ThreadTrackerTest, ReconcileDoesNotDoubleCountAThreadStillStarting) {
  constexpr uint32_t kMain = 10, kCensus = 11, kStarting = 30;
  tracker_->Created(kThreadA, kSiteA, false);  // recorded, tid not yet known
  const uint32_t tasks[] = {kMain, kCensus, kStarting};
  tracker_->Reconcile(tasks, 3, kCensus, kMain);
  tracker_->Started(kThreadA, kStarting);
  tracker_->Reconcile(tasks, 3, kCensus, kMain);
  EXPECT_EQ(Live(wire::kUnattributedSite), 0);
  EXPECT_EQ(Live(kSiteA), 1);
}

// A fake /proc: tid -> sample.
struct FakeTask {
  uint32_t tid;
  TaskSample sample;
};
std::vector<FakeTask>* g_fake_tasks = nullptr;

bool FakeProbe(uint32_t tid, TaskSample* sample) {
  for (const FakeTask& task : *g_fake_tasks) {
    if (task.tid == tid) {
      *sample = task.sample;
      return true;
    }
  }
  return false;
}

TaskSample Sample(char state, uint64_t cpu, const char* wchan = "") {
  TaskSample sample;
  sample.state = state;
  sample.cpu_ticks = cpu;
  sample.start_ticks = 5;
  strncpy(sample.wchan, wchan, sizeof(sample.wchan) - 1);
  return sample;
}

struct DecodedSite {
  wire::ThreadSiteState state;
  std::string wchan;
};

std::vector<DecodedSite> Decode(const os::PageBuffer& buffer) {
  std::vector<DecodedSite> sites;
  const char* cursor = buffer.data();
  wire::RecordHeader header;
  memcpy(&header, cursor, sizeof(header));
  EXPECT_EQ(header.type, static_cast<uint32_t>(wire::RecordType::kThreadStates));
  EXPECT_EQ(header.length + sizeof(header), buffer.size());
  cursor += sizeof(header);
  wire::ThreadStatesHeader states;
  memcpy(&states, cursor, sizeof(states));
  cursor += sizeof(states);
  for (uint32_t i = 0; i < states.count; ++i) {
    DecodedSite site;
    memcpy(&site.state, cursor, sizeof(site.state));
    cursor += sizeof(site.state);
    site.wchan.assign(cursor, site.state.wchan_length);
    cursor += site.state.wchan_length;
    sites.push_back(site);
  }
  EXPECT_EQ(cursor, buffer.data() + buffer.size());
  return sites;
}

TEST_F(ThreadTrackerTest, StatesPerSiteWithWchanAndIdleTime) {
  std::vector<FakeTask> tasks = {
      {101, Sample('S', 3, "futex_do_wait")}, {102, Sample('S', 4, "futex_do_wait")},
      {103, Sample('S', 5, "do_epoll_wait")}, {104, Sample('R', 9)},
      {201, Sample('D', 1, "io_schedule")},
  };
  g_fake_tasks = &tasks;
  uint64_t threads[] = {0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000};
  uint32_t tids[] = {101, 102, 103, 104, 201};
  for (int i = 0; i < 4; ++i) {
    tracker_->Created(threads[i], kSiteA, false);
    tracker_->Started(threads[i], tids[i]);
  }
  tracker_->Created(threads[4], kSiteB, false);
  tracker_->Started(threads[4], tids[4]);
  tracker_->Created(threads[5], kSiteB, false);  // returned, never joined
  tracker_->Started(threads[5], 202);
  tracker_->Exited(threads[5]);

  os::PageBuffer first;
  RecordWriter writer(first);
  ASSERT_TRUE(tracker_->WriteStates(writer, FakeProbe, 1000 * kMs));
  // 70 seconds later, thread 104 has run, the others have not.
  tasks[3].sample.cpu_ticks = 50;
  os::PageBuffer second;
  RecordWriter second_writer(second);
  ASSERT_TRUE(tracker_->WriteStates(second_writer, FakeProbe, 71'000 * kMs));
  std::vector<DecodedSite> sites = Decode(second);
  ASSERT_EQ(sites.size(), 2u);
  const DecodedSite& a = sites[0];
  EXPECT_EQ(a.state.site_id, kSiteA);
  EXPECT_EQ(a.state.sleeping, 3u);
  EXPECT_EQ(a.state.running, 1u);
  EXPECT_EQ(a.wchan, "futex_do_wait");
  EXPECT_EQ(a.state.longest_idle_ms, 70'000u);
  EXPECT_EQ(a.state.idle_over_minute, 3u);
  const DecodedSite& b = sites[1];
  EXPECT_EQ(b.state.site_id, kSiteB);
  EXPECT_EQ(b.state.disk_sleeping, 1u);
  EXPECT_EQ(b.state.exited_unjoined, 1u);
  EXPECT_EQ(b.wchan, "io_schedule");
  g_fake_tasks = nullptr;
}

TEST_F(ThreadTrackerTest, ResetAfterForkForgetsTheParentsThreads) {
  tracker_->Created(kThreadA, kSiteA, false);
  tracker_->Created(kThreadB, kSiteB, true);
  ThreadStartPool::Slot* slot = tracker_->pool().Claim();
  ASSERT_NE(slot, nullptr);
  tracker_->ResetAfterFork();
  EXPECT_EQ(Live(kSiteA), 0);
  EXPECT_EQ(Live(kSiteB), 0);
  EXPECT_EQ(tracker_->pool().InUseForTesting(), 0u);
}

TEST(ProbeProcTaskTest, ReadsThisThread) {
  TaskSample sample;
  ASSERT_TRUE(ProbeProcTask(static_cast<uint32_t>(os::GetTid()), &sample));
  EXPECT_EQ(sample.state, 'R');
  EXPECT_GT(sample.start_ticks, 0u);
  EXPECT_FALSE(ProbeProcTask(0x7ffffff0u, &sample));
}

}  // namespace
}  // namespace dw
