// Tests of the drift analyzers (RobustDriftAnalyzer, the default, and OlsDriftAnalyzer) and of
// budget parsing on synthetic series: what must and must not count as drift.
#include "report/analysis/drift_analysis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dw::report {
namespace {

struct Series {
  std::vector<double> t;
  std::vector<int64_t> v;
};

// `n` samples one second apart; value(i) gives the sample.
Series Make(size_t n, const std::function<int64_t(size_t)>& value) {
  Series s;
  for (size_t i = 0; i < n; ++i) {
    s.t.push_back(static_cast<double>(i));
    s.v.push_back(value(i));
  }
  return s;
}

// Deterministic noise in [-amplitude, amplitude].
int64_t Noise(size_t i, int64_t amplitude) {
  return static_cast<int64_t>((i * 2654435761u) % (2 * amplitude + 1)) - amplitude;
}

DriftFinding Analyze(const Series& s) { return OlsDriftAnalyzer().Analyze(s.t, s.v); }

TEST(OlsDriftAnalyzerTest, LinearLeakDrifts) {
  const DriftFinding finding = Analyze(Make(60, [](size_t i) { return 4096 + 100 * i; }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_TRUE(finding.enough_samples);
  EXPECT_NEAR(finding.slope_per_hour, 100.0 * 3600, 1e-6);
}

TEST(OlsDriftAnalyzerTest, NoisyLeakDrifts) {
  const DriftFinding finding =
      Analyze(Make(120, [](size_t i) { return 1'000'000 + 1000 * i + Noise(i, 5000); }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour / 3600, 1000, 150);
}

TEST(OlsDriftAnalyzerTest, SlowStepwiseLeakDrifts) {
  // One leaked object every 7 samples: the value rises in few intervals, but keeps rising.
  const DriftFinding finding = Analyze(Make(90, [](size_t i) { return 64 * (i / 7); }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
}

TEST(OlsDriftAnalyzerTest, SawtoothChurnIsSteady) {
  // Grows by 1 KiB per sample, freed every 10 samples: bounded alloc/free churn.
  const DriftFinding finding = Analyze(Make(100, [](size_t i) { return 1024 * (i % 10); }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
}

TEST(OlsDriftAnalyzerTest, RandomChurnIsSteady) {
  const DriftFinding finding =
      Analyze(Make(100, [](size_t i) { return 50'000 + Noise(i, 20'000); }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
}

TEST(OlsDriftAnalyzerTest, SingleStepIsNotDrift) {
  // A buffer allocated once in the middle of the run.
  for (size_t step_at : {30u, 50u, 70u, 90u}) {
    SCOPED_TRACE(step_at);
    const DriftFinding finding =
        Analyze(Make(100, [&](size_t i) { return i < step_at ? 1000 : 1000 + (1 << 20); }));
    EXPECT_NE(finding.status, DriftStatus::kDrifting);
  }
}

TEST(OlsDriftAnalyzerTest, FlatIsSteady) {
  const DriftFinding finding = Analyze(Make(50, [](size_t) { return 123456; }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
  EXPECT_TRUE(finding.enough_samples);
  EXPECT_EQ(finding.slope_per_hour, 0.0);
}

TEST(OlsDriftAnalyzerTest, ShrinkingIsSteady) {
  const DriftFinding finding = Analyze(Make(50, [](size_t i) { return 100000 - 100 * i; }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
  EXPECT_LT(finding.slope_per_hour, 0);
}

TEST(OlsDriftAnalyzerTest, CacheFillingThenFlatIsWarming) {
  // Grows over the first 30 samples (a cache filling up), then stays at capacity.
  const DriftFinding finding = Analyze(
      Make(100, [](size_t i) { return 1000 * static_cast<int64_t>(std::min<size_t>(i, 30)); }));
  EXPECT_EQ(finding.status, DriftStatus::kWarming);
}

TEST(OlsDriftAnalyzerTest, TooFewSamplesIsNotJudged) {
  const DriftFinding finding = Analyze(Make(4, [](size_t i) { return 1000 * i; }));
  EXPECT_FALSE(finding.enough_samples);
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
}

TEST(OlsDriftAnalyzerTest, UsesTimestampsNotIndices) {
  // Same values, censuses 10 s apart: the slope per hour is ten times smaller.
  Series s = Make(40, [](size_t i) { return 100 * i; });
  for (double& t : s.t) t *= 10;
  const DriftFinding finding = Analyze(s);
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour, 10.0 * 3600, 1e-6);
}

TEST(OlsDriftAnalyzerTest, WorksThroughTheInterface) {
  OlsDriftAnalyzer concrete;
  const DriftAnalyzer& analyzer = concrete;
  Series s = Make(20, [](size_t i) { return 10 * i; });
  EXPECT_EQ(analyzer.Analyze(s.t, s.v).status, DriftStatus::kDrifting);
  EXPECT_STREQ(DriftStatusName(DriftStatus::kWarming), "warming");
}

}  // namespace
}  // namespace dw::report

namespace dw::report {
namespace {

TEST(OlsDriftAnalyzerTest, StartUpGrowthInsideTheWarmUpIsSteady) {
  // A ring buffer filled during the first 7% of the run, then only replaced.
  const DriftFinding finding = Analyze(
      Make(60, [](size_t i) { return 1000 * static_cast<int64_t>(std::min<size_t>(i, 4)); }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
}

// Count series (fds, threads, timers) are small integers: one descriptor leaked every fourth
// census is drift; a pool of descriptors opened at start-up and reused is not.
TEST(OlsDriftAnalyzerTest, SlowFdCountLeakDrifts) {
  const Series s = Make(60, [](size_t i) { return static_cast<int64_t>(12 + i / 4); });
  const DriftFinding finding = Analyze(s);
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour, 900, 60);
}

TEST(OlsDriftAnalyzerTest, FdPoolOpenedAtStartIsSteady) {
  const Series s = Make(60, [](size_t i) { return static_cast<int64_t>(i < 5 ? 2 * i : 10); });
  EXPECT_EQ(Analyze(s).status, DriftStatus::kSteady);
}

TEST(OlsDriftAnalyzerTest, FdChurnIsSteady) {
  const Series s = Make(60, [](size_t i) { return static_cast<int64_t>(8 + i % 3); });
  EXPECT_EQ(Analyze(s).status, DriftStatus::kSteady);
}

}  // namespace
}  // namespace dw::report

namespace dw::report {
namespace {

DriftFinding Robust(const Series& s, RobustDriftAnalyzer::Options options = {}) {
  return RobustDriftAnalyzer(options).Analyze(s.t, s.v);
}

TEST(RobustDriftAnalyzerTest, LinearLeakDriftsWithExactSlopeAndHighConfidence) {
  const DriftFinding finding = Robust(Make(60, [](size_t i) { return 4096 + 100 * i; }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_TRUE(finding.enough_samples);
  EXPECT_NEAR(finding.slope_per_hour, 100.0 * 3600, 1e-6);
  EXPECT_GT(finding.confidence, 0.999);
  EXPECT_LE(finding.confidence, 1.0);
}

TEST(RobustDriftAnalyzerTest, NoisyLeakDrifts) {
  const DriftFinding finding =
      Robust(Make(120, [](size_t i) { return 1'000'000 + 1000 * i + Noise(i, 5000); }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour / 3600, 1000, 100);
}

TEST(RobustDriftAnalyzerTest, OutliersDoNotMoveTheSlope) {
  // Every 10th census catches a 1 MiB transient buffer: least squares would tilt, Theil-Sen not.
  const DriftFinding finding = Robust(Make(100, [](size_t i) {
    return static_cast<int64_t>(50'000 + 10 * i + (i % 10 == 3 ? (1 << 20) : 0));
  }));
  EXPECT_NEAR(finding.slope_per_hour / 3600, 10, 1);
}

TEST(RobustDriftAnalyzerTest, SlowStepwiseLeakDrifts) {
  EXPECT_EQ(Robust(Make(90, [](size_t i) { return 64 * (i / 7); })).status, DriftStatus::kDrifting);
}

TEST(RobustDriftAnalyzerTest, SlowFdCountLeakDrifts) {
  const DriftFinding finding =
      Robust(Make(60, [](size_t i) { return static_cast<int64_t>(12 + i / 4); }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour, 900, 100);
}

TEST(RobustDriftAnalyzerTest, SawtoothIsSteady) {
  // GC-like: piles up 1 KiB per census, all freed every 10 censuses.
  const DriftFinding finding = Robust(Make(100, [](size_t i) { return 1024 * (i % 10); }));
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
  EXPECT_TRUE(finding.troughs_only);
}

TEST(RobustDriftAnalyzerTest, AliasedSawtoothIsSteady) {
  // A batch freed about as often as the census runs: the samples land anywhere in the cycle.
  const DriftFinding finding = Robust(Make(60, [](size_t i) {
    return static_cast<int64_t>(2'000'000 * std::fmod(static_cast<double>(i) * 1.03, 1.0));
  }));
  EXPECT_NE(finding.status, DriftStatus::kDrifting);
}

TEST(RobustDriftAnalyzerTest, TinyLeakUnderBigSawtoothDrifts) {
  // 2 MB piles up and is freed every 5 censuses; underneath, 48 bytes leak per census.
  const DriftFinding finding = Robust(Make(
      100, [](size_t i) { return static_cast<int64_t>(400'000 * (i % 5) + 48 * i + 100'000); }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_TRUE(finding.troughs_only);
  EXPECT_NEAR(finding.slope_per_hour / 3600, 48, 1);
}

TEST(RobustDriftAnalyzerTest, TeardownAtTheEndDoesNotHideALeak) {
  // A leaking map freed by static destructors when the process is stopped: the last two
  // censuses are 0.
  const DriftFinding finding =
      Robust(Make(31, [](size_t i) { return i < 29 ? static_cast<int64_t>(9600 * (i + 1)) : 0; }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour / 3600, 9600, 1);
}

TEST(RobustDriftAnalyzerTest, RandomChurnIsSteady) {
  EXPECT_EQ(Robust(Make(100, [](size_t i) { return 50'000 + Noise(i, 20'000); })).status,
            DriftStatus::kSteady);
}

TEST(RobustDriftAnalyzerTest, FdChurnIsSteady) {
  EXPECT_EQ(Robust(Make(60, [](size_t i) { return static_cast<int64_t>(8 + i % 3); })).status,
            DriftStatus::kSteady);
}

TEST(RobustDriftAnalyzerTest, OneOffStepIsNotDrift) {
  for (size_t step_at : {10u, 30u, 50u, 70u, 90u}) {
    SCOPED_TRACE(step_at);
    EXPECT_NE(
        Robust(Make(100, [&](size_t i) { return i < step_at ? 1000 : 1000 + (1 << 20); })).status,
        DriftStatus::kDrifting);
    // With noise on top, the quarter means can rise by chance; the step must still not count.
    EXPECT_NE(Robust(Make(100,
                          [&](size_t i) {
                            return (i < step_at ? 100'000 : 100'000 + (1 << 20)) + Noise(i, 3000);
                          }))
                  .status,
              DriftStatus::kDrifting);
  }
}

TEST(RobustDriftAnalyzerTest, LruCacheWarmUpThenPlateauIsWarming) {
  // Fills over the first 20 censuses of 60 (an LRU cache at capacity), then evicts as much as
  // it inserts, with a little noise from variable-size entries.
  const DriftFinding finding = Robust(Make(60, [](size_t i) {
    return static_cast<int64_t>(1000 * std::min<size_t>(i, 20)) + Noise(i, 200);
  }));
  EXPECT_EQ(finding.status, DriftStatus::kWarming);
  EXPECT_GE(finding.warmup_end_s, 15);
}

TEST(RobustDriftAnalyzerTest, DeceleratingGrowthIsWarmingNotDrifting) {
  // Approaches a plateau exponentially (arenas and slabs mapping in), time constant 8 s.
  const DriftFinding finding = Robust(Make(60, [](size_t i) {
    return static_cast<int64_t>(40 * 65536 * (1 - std::exp(-static_cast<double>(i) / 8)));
  }));
  EXPECT_EQ(finding.status, DriftStatus::kWarming);
}

TEST(RobustDriftAnalyzerTest, DeceleratingSlabStaircaseIsNotDrift) {
  // The same in whole 64 KiB slabs (what a per-site series of a slab allocator looks like).
  const DriftFinding finding = Robust(Make(60, [](size_t i) {
    return 65536 * static_cast<int64_t>(40 * (1 - std::exp(-static_cast<double>(i) / 4)));
  }));
  EXPECT_NE(finding.status, DriftStatus::kDrifting);
}

TEST(RobustDriftAnalyzerTest, LeakAfterStartUpBurstDrifts) {
  // A pool of 1 MiB opened in the first 5 censuses, then a steady 200 B per census leak.
  const DriftFinding finding = Robust(Make(60, [](size_t i) {
    return static_cast<int64_t>((1 << 20) * std::min<size_t>(i, 5) / 5 + 200 * i);
  }));
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_GE(finding.warmup_end_s, 4);
  EXPECT_NEAR(finding.slope_per_hour / 3600, 200, 5);
}

TEST(RobustDriftAnalyzerTest, StartUpGrowthIsSteady) {
  EXPECT_EQ(
      Robust(Make(60, [](size_t i) { return 1000 * static_cast<int64_t>(std::min<size_t>(i, 4)); }))
          .status,
      DriftStatus::kSteady);
  EXPECT_EQ(
      Robust(Make(60, [](size_t i) { return static_cast<int64_t>(i < 5 ? 2 * i : 10); })).status,
      DriftStatus::kSteady);
}

TEST(RobustDriftAnalyzerTest, FlatAndShrinkingAreSteady) {
  const DriftFinding flat = Robust(Make(50, [](size_t) { return 123456; }));
  EXPECT_EQ(flat.status, DriftStatus::kSteady);
  EXPECT_TRUE(flat.enough_samples);
  EXPECT_EQ(flat.slope_per_hour, 0.0);
  const DriftFinding shrinking = Robust(Make(50, [](size_t i) { return 100000 - 100 * i; }));
  EXPECT_EQ(shrinking.status, DriftStatus::kSteady);
  EXPECT_LT(shrinking.slope_per_hour, 0);
  EXPECT_LT(shrinking.confidence, 0.01);
}

TEST(RobustDriftAnalyzerTest, TooFewSamplesIsNotJudged) {
  const DriftFinding finding = Robust(Make(4, [](size_t i) { return 1000 * i; }));
  EXPECT_FALSE(finding.enough_samples);
  EXPECT_EQ(finding.status, DriftStatus::kSteady);
}

TEST(RobustDriftAnalyzerTest, WarmupOverride) {
  // Grows for 30 s then holds: with the warm-up forced past the growth, nothing is left to see;
  // with it forced to 0 on a leak, the leak is still a leak.
  const Series cache =
      Make(60, [](size_t i) { return static_cast<int64_t>(1000 * std::min<size_t>(i, 30)); });
  RobustDriftAnalyzer::Options options;
  options.warmup_s = 35;
  const DriftFinding skipped = Robust(cache, options);
  EXPECT_NE(skipped.status, DriftStatus::kDrifting);
  EXPECT_NEAR(skipped.warmup_end_s, 35, 1e-9);
  options.warmup_s = 100;  // longer than the run
  EXPECT_FALSE(Robust(cache, options).enough_samples);
  options.warmup_s = 0;
  EXPECT_EQ(Robust(Make(30, [](size_t i) { return 10 * i; }), options).status,
            DriftStatus::kDrifting);
}

TEST(RobustDriftAnalyzerTest, NonUniformSpacing) {
  // Downsampled history: old points 8 s apart, the newest 1 s apart; the slope is per second of
  // time, not per point.
  Series s;
  for (int i = 0; i < 40; ++i) s.t.push_back(8.0 * i);
  for (int i = 1; i <= 60; ++i) s.t.push_back(312.0 + i);
  for (double t : s.t) s.v.push_back(static_cast<int64_t>(5 * t));
  const DriftFinding finding = Robust(s);
  EXPECT_EQ(finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(finding.slope_per_hour, 5.0 * 3600, 1e-6);
}

TEST(RobustDriftAnalyzerTest, WorksThroughTheInterface) {
  RobustDriftAnalyzer concrete;
  const DriftAnalyzer& analyzer = concrete;
  Series s = Make(20, [](size_t i) { return 10 * i; });
  EXPECT_EQ(analyzer.Analyze(s.t, s.v).status, DriftStatus::kDrifting);
}

TEST(TheilSenTest, ExactOnLinesAndSubsamplesLongSeriesDeterministically) {
  const Series line = Make(1000, [](size_t i) { return 7 * i + Noise(i, 1); });
  const double all = TheilSenSlope(line.t, line.v, 1'000'000);
  const double sampled = TheilSenSlope(line.t, line.v, 20000);
  EXPECT_NEAR(all, 7, 0.01);
  EXPECT_NEAR(sampled, 7, 0.05);
  EXPECT_EQ(sampled, TheilSenSlope(line.t, line.v, 20000));
  EXPECT_EQ(TheilSenSlope(std::vector<double>{1}, std::vector<int64_t>{5}), 0.0);
}

TEST(MannKendallTest, StatisticVarianceAndTies) {
  // 1 2 3 4 5: S = 10, Var = 5*4*15/18.
  const MannKendall up = MannKendallTest(std::vector<int64_t>{1, 2, 3, 4, 5});
  EXPECT_EQ(up.s, 10);
  EXPECT_NEAR(up.variance, 5 * 4 * 15 / 18.0, 1e-9);
  EXPECT_NEAR(up.z, 9 / std::sqrt(5 * 4 * 15 / 18.0), 1e-9);
  EXPECT_NEAR(up.p_up, 0.5 * std::erfc(up.z / std::sqrt(2.0)), 1e-12);
  // 1 1 2 2: S = 4; ties of two groups of 2: Var = (4*3*13 - 2*(2*1*9)) / 18.
  const MannKendall tied = MannKendallTest(std::vector<int64_t>{1, 1, 2, 2});
  EXPECT_EQ(tied.s, 4);
  EXPECT_NEAR(tied.variance, (4 * 3 * 13 - 2 * 18) / 18.0, 1e-9);
  const MannKendall flat = MannKendallTest(std::vector<int64_t>{3, 3, 3});
  EXPECT_EQ(flat.variance, 0);
  EXPECT_EQ(flat.p_up, 1.0);
}

TEST(ParseBudgetsTest, AcceptsUnitsAndRates) {
  absl::StatusOr<DriftBudgets> budgets =
      ParseBudgets("heap=10MiB/h,fds=0/h,threads=2/min,timers=1/s");
  ASSERT_TRUE(budgets.ok()) << budgets.status();
  EXPECT_EQ(budgets->For(wire::Kind::kHeap), 10.0 * 1024 * 1024);
  EXPECT_EQ(budgets->For(wire::Kind::kFds), 0.0);
  EXPECT_EQ(budgets->For(wire::Kind::kThreads), 120.0);
  EXPECT_EQ(budgets->For(wire::Kind::kTimers), 3600.0);
  budgets = ParseBudgets("heap=512B/s");
  ASSERT_TRUE(budgets.ok());
  EXPECT_EQ(budgets->For(wire::Kind::kHeap), 512.0 * 3600);
  EXPECT_FALSE(budgets->For(wire::Kind::kFds).has_value());
  budgets = ParseBudgets("heap=1.5GiB/h");
  ASSERT_TRUE(budgets.ok());
  EXPECT_EQ(budgets->For(wire::Kind::kHeap), 1.5 * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseBudgets("heap=2048/h")->For(wire::Kind::kHeap), 2048.0);
}

TEST(ParseBudgetsTest, RejectsBadInput) {
  for (const char* bad : {"", "heap", "heap=10MiB", "heap=10MiB/day", "heap=10MB/h", "memory=1/h",
                          "fds=-1/h", "fds=1KiB/h", "fds=inf/h", "fds=nan/h", "fds=1e3/h", "fds=/h",
                          "fds=1/h,fds=2/h", "heap=10MiB/h,", "threads=two/h"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<DriftBudgets> budgets = ParseBudgets(bad);
    EXPECT_FALSE(budgets.ok());
    EXPECT_EQ(budgets.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(std::string(ParseBudgets("memory=1/h").status().message()),
              ::testing::HasSubstr("memory=1/h"));
}

}  // namespace
}  // namespace dw::report
