// Sampled mode end to end: real programs under the real shim with DRIFTWATCH_MODE=sampled,
// their estimates checked against what the programs are known to keep.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

using e2e::OnlyProcess;
using e2e::RunProgram;
using e2e::TotalsAt;

constexpr uint32_t kMean = 64 * 1024;

TEST(SamplingTest, EstimatesMatchWhatTheProgramKeeps) {
  RunResult result = RunProgram("e2e_sampled_estimates", {}, std::nullopt, kMean);
  const ProcessReport& process = OnlyProcess(result);
  EXPECT_EQ(process.mode, wire::kModeSampled);
  // 12.8 MB in 64-byte blocks is about 195 samples at a 64 KiB mean: the estimate's deviation
  // is about 7%; 35% is 5 of them.
  const auto small = TotalsAt(process, "leak_small", wire::Kind::kHeap);
  EXPECT_NEAR(static_cast<double>(small.live_bytes), 12.8e6, 0.35 * 12.8e6);
  EXPECT_NEAR(static_cast<double>(small.live), 200000.0, 0.35 * 200000.0);
  // A block sixteen times the mean is sampled for certain (p = 1 - 1e-7) and stands for itself
  // (and for 1e-7 of another: about 0.1 byte each).
  const auto large = TotalsAt(process, "leak_large", wire::Kind::kHeap);
  EXPECT_EQ(large.live, 40);
  EXPECT_NEAR(static_cast<double>(large.live_bytes), 40 << 20, 40);
  // Every sample of a freed block is released with the weight it was added with.
  const auto churned = TotalsAt(process, "churn", wire::Kind::kHeap);
  EXPECT_GT(churned.acquired, 0u);
  EXPECT_EQ(churned.live, 0);
  EXPECT_EQ(churned.live_bytes, 0);
  // Freed by another thread than the one that allocated them: still found.
  const auto handed = TotalsAt(process, "handoff", wire::Kind::kHeap);
  EXPECT_GT(handed.acquired, 0u);
  EXPECT_EQ(handed.live_bytes, 0);
  // Descriptors are not sampled.
  EXPECT_EQ(TotalsAt(process, "keep_fds", wire::Kind::kFds).live, 7);
}

// At a mean of one byte every block is sampled with weight one: sampled mode must then give
// exact mode's figures, through the gate, the filter and the weights.
TEST(SamplingTest, MeanOfOneByteGivesExactFigures) {
  RunResult result = RunProgram("e2e_exact_counts", {}, std::nullopt, 1);
  const ProcessReport& process = OnlyProcess(result);
  const auto leak = TotalsAt(process, "leak_here", wire::Kind::kHeap);
  EXPECT_EQ(leak.live, 600);
  EXPECT_EQ(leak.live_bytes, 28800);
  EXPECT_EQ(leak.acquired, 1000u);
  const auto churn = TotalsAt(process, "churn_and_free", wire::Kind::kHeap);
  EXPECT_EQ(churn.acquired, 500u);
  EXPECT_EQ(churn.live, 0);
}

// A fork child's census thread starts one interval after the fork, from a hook. In sampled mode
// few allocations reach the tracker: the start must not wait for a sample.
TEST(SamplingTest, ForkChildrenReportAtTheDefaultMean) {
  RunResult result = RunProgram("e2e_fork_children", {}, std::nullopt, 512 * 1024);
  int children = 0;
  for (const ProcessReport& process : result.processes) {
    if (process.identity.ppid != static_cast<uint32_t>(result.child_pid)) continue;
    if (process.census_count == 0) continue;
    EXPECT_EQ(process.mode, wire::kModeSampled);
    EXPECT_TRUE(process.saw_final);
    // The three leaking children allocate after their census thread is due and then live 2.5
    // intervals: a census thread that started sends censuses before the final one.
    if (process.census_count >= 2) ++children;
  }
  // The fourth child exits at once, with at most its final census.
  EXPECT_EQ(children, 3);
}

}  // namespace
}  // namespace dw::report
