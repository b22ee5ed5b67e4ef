// Tests of OlsDriftAnalyzer on synthetic series: what must and must not count as drift.
#include "report/drift_analysis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
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
