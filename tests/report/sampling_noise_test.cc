// Tests of the sampled-mode noise model (ApplySamplingNoise and friends in drift_analysis.h):
// the formulas of docs/SAMPLING.md, and the verdicts on simulated Poisson-sampled heaps, the way
// the shim samples (a sample every Exp(mean) bytes; a sampled block of size s counts as
// s / (1 - exp(-s/mean)) bytes).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "report/analysis/drift_analysis.h"

namespace dw::report {
namespace {

constexpr double kKiB = 1024;
constexpr double kMean = 512 * kKiB;

TEST(SamplingNoiseTest, NoisePerByte) {
  EXPECT_DOUBLE_EQ(NoisePerByte({.mean_bytes = kMean}), kMean);
  EXPECT_NEAR(NoisePerByte({.mean_bytes = kMean, .block_bytes = 64}), kMean, 0.001 * kMean);
  // s = m: m e^-1 / (1 - e^-1).
  EXPECT_NEAR(NoisePerByte({.mean_bytes = kMean, .block_bytes = kMean}), 0.582 * kMean,
              0.001 * kMean);
  EXPECT_LT(NoisePerByte({.mean_bytes = kMean, .block_bytes = 8 * kMean}), 0.01 * kMean);
  EXPECT_EQ(NoisePerByte({.mean_bytes = 0}), 0);
}

TEST(SamplingNoiseTest, DetectionTimeFollowsTheDerivation) {
  const double z = NormalQuantile(0.999);
  EXPECT_NEAR(z, 3.090, 0.001);
  EXPECT_NEAR(NormalQuantile(0.9), 1.2816, 0.0001);
  // At even odds, the quarters' rise (3/4 of the window's) must average z^2 samples; at 90%,
  // ((1.28 + sqrt(1.28^2 + 4 z^2)) / 2)^2 / 0.75 = 19.2.
  EXPECT_NEAR(SamplesToDetect(z, 0.5), z * z / 0.75, 1e-9);
  EXPECT_NEAR(SamplesToDetect(z, 0.9), 19.22, 0.01);
  // Poisson term alone (nothing else held at the site): 19.2 m / r. 10 KiB/min at 512 KiB
  // sampling: 19.22 * 51.2 min = 984 min.
  const double rate = 10 * kKiB / 60;
  EXPECT_NEAR(WindowToDetect({.mean_bytes = kMean}, rate, 0, 1.0, z) / 60, 984, 1);
  // Eight times the sampling rate, eight times faster.
  EXPECT_NEAR(WindowToDetect({.mean_bytes = 64 * kKiB}, rate, 0, 1.0, z) / 60, 123, 0.2);
  // Level noise of a site holding 64 GiB beside the leak dominates:
  // ((z + 1.28) sqrt(12 m B dt) / r)^(2/3).
  const double held = 64.0 * (1 << 30);
  const double level = std::pow((z + 1.2816) * std::sqrt(12 * kMean * held * 1.0) / rate, 2.0 / 3);
  EXPECT_NEAR(WindowToDetect({.mean_bytes = kMean}, rate, held, 1.0, z), level, 1e-3 * level);
  EXPECT_GT(level, SamplesToDetect(z) * kMean / rate);
  // DetectableRate is its inverse.
  const double window = WindowToDetect({.mean_bytes = kMean}, rate, 0, 1.0, z);
  EXPECT_NEAR(DetectableRate({.mean_bytes = kMean}, 0, window, size_t(window), z), rate,
              1e-9 * rate);
}

// A heap site under Poisson sampling by bytes. Each census (1 s apart) the program allocates
// `leak_per_s` bytes it keeps, in blocks of `block` bytes, and holds `churn` more bytes that it
// frees and allocates anew between censuses. Returns the estimated live bytes at each census.
std::vector<int64_t> SampledSeries(uint64_t seed, int censuses, double leak_per_s, double churn,
                                   double block = 64, double one_off_at = -1,
                                   double one_off_bytes = 0) {
  std::mt19937_64 random(seed);
  std::exponential_distribution<double> gap(1.0 / kMean);
  const double weight = block / -std::expm1(-block / kMean);
  double to_next = gap(random);
  // Bytes sampled from `bytes` of fresh allocation: each sample lands in one block.
  const auto sampled = [&](double bytes) {
    double estimate = 0;
    while (to_next <= bytes) {
      bytes -= to_next;
      estimate += weight;
      to_next = gap(random);
    }
    to_next -= bytes;
    return estimate;
  };
  std::vector<int64_t> values;
  double leaked = 0;
  for (int n = 0; n < censuses; ++n) {
    leaked += sampled(leak_per_s);
    if (n == static_cast<int>(one_off_at)) {
      // One big buffer: sampled with probability 1 - exp(-s/m), weighted to match.
      const double p = -std::expm1(-one_off_bytes / kMean);
      if (std::uniform_real_distribution<double>(0, 1)(random) < p) leaked += one_off_bytes / p;
    }
    values.push_back(static_cast<int64_t>(leaked + sampled(churn)));
  }
  return values;
}

std::vector<double> Seconds(int censuses) {
  std::vector<double> times;
  for (int n = 0; n < censuses; ++n) times.push_back(n);
  return times;
}

DriftFinding Judge(const std::vector<double>& times, const std::vector<int64_t>& values,
                   double block = 64) {
  RobustDriftAnalyzer analyzer;
  return analyzer.AnalyzeEstimate(times, values, {.mean_bytes = kMean, .block_bytes = block});
}

// 200 KiB/min for 10 minutes at 512 KiB sampling: about 4 samples. Exact data would show a
// steady leak; these few samples can neither prove it nor rule it out: inconclusive, with the
// run length that would tell (z^2 m / r = 24 min of window, 27 min of run).
TEST(SamplingNoiseTest, FewSamplesOfASlowLeakAreInconclusiveNotSteady) {
  const int censuses = 600;
  const std::vector<double> times = Seconds(censuses);
  const double rate = 200 * kKiB / 60;
  int inconclusive = 0, hit = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const std::vector<int64_t> values = SampledSeries(seed, censuses, rate, 0);
    const DriftFinding finding = Judge(times, values);
    EXPECT_TRUE(finding.estimated);
    EXPECT_EQ(finding.sample_mean_bytes, kMean);
    // Never a confident verdict either way on a handful of samples.
    EXPECT_NE(finding.status, DriftStatus::kDrifting) << "seed " << seed;
    if (finding.samples_in_rise < 1.5) continue;  // one sample or none: no trend to speak of
    ++hit;
    EXPECT_EQ(finding.status, DriftStatus::kInconclusive) << "seed " << seed;
    if (finding.status != DriftStatus::kInconclusive) continue;
    ++inconclusive;
    // The apparent rate is the leak's within the noise of a few samples, and so is the time.
    EXPECT_GT(finding.apparent_slope_per_hour, 0.3 * rate * 3600) << "seed " << seed;
    EXPECT_LT(finding.apparent_slope_per_hour, 3.0 * rate * 3600) << "seed " << seed;
    EXPECT_GT(finding.needed_run_s, 600) << "seed " << seed;
    EXPECT_LT(finding.needed_run_s, 6 * 3600) << "seed " << seed;
  }
  EXPECT_GE(hit, 15);
  EXPECT_EQ(inconclusive, hit);
}

// The same leak over the run length the derivation asks for is found about 9 times in 10
// (kDetectionPower).
TEST(SamplingNoiseTest, ALongEnoughRunFindsTheSlowLeak) {
  const double rate = 200 * kKiB / 60;
  const double z = NormalQuantile(0.999);
  const double needed = WindowToDetect({.mean_bytes = kMean}, rate, 0, 1.0, z) / 0.9;
  const int censuses = static_cast<int>(needed);
  const std::vector<double> times = Seconds(censuses);
  int drifting = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const DriftFinding finding = Judge(times, SampledSeries(seed, censuses, rate, 0));
    drifting += finding.status == DriftStatus::kDrifting ? 1 : 0;
    EXPECT_NE(finding.status, DriftStatus::kSteady) << "seed " << seed;
  }
  EXPECT_GE(drifting, 16);
}

// A site that churns 20 MiB (about 40 samples a census, each census afresh) without leaking is
// steady: the sampling noise alone does not make it inconclusive or drifting.
TEST(SamplingNoiseTest, ChurnWithoutLeakStaysSteady) {
  const int censuses = 600;
  const std::vector<double> times = Seconds(censuses);
  int steady = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const DriftFinding finding = Judge(times, SampledSeries(seed, censuses, 0, 20 * 1024 * kKiB));
    steady += finding.status == DriftStatus::kSteady ? 1 : 0;
    EXPECT_NE(finding.status, DriftStatus::kDrifting) << "seed " << seed;
    EXPECT_GT(finding.detectable_slope_per_hour, 0);
  }
  EXPECT_GE(steady, 28);
}

// One 4 MiB buffer allocated mid-run is a step of about 8 samples' worth in one census: a
// burst, not a slow leak, so steady as in exact mode.
TEST(SamplingNoiseTest, OneOffBigBufferIsAStepNotInconclusive) {
  const int censuses = 600;
  const std::vector<double> times = Seconds(censuses);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const DriftFinding finding =
        Judge(times, SampledSeries(seed, censuses, 0, 0, 64, 300, 4 * 1024 * kKiB), 4 << 20);
    EXPECT_EQ(finding.status, DriftStatus::kSteady) << "seed " << seed;
  }
}

// A fast leak is drifting in sampled mode as in exact mode.
TEST(SamplingNoiseTest, FastLeakDrifts) {
  const int censuses = 120;
  const std::vector<double> times = Seconds(censuses);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const DriftFinding finding =
        Judge(times, SampledSeries(seed, censuses, 20 * 1024 * kKiB / 60, 4 * 1024 * kKiB));
    EXPECT_EQ(finding.status, DriftStatus::kDrifting) << "seed " << seed;
    EXPECT_GT(finding.samples_in_rise, 9.5);
  }
}

// Exact mode (no sampling mean) is left as the analyzer judged it.
TEST(SamplingNoiseTest, ExactFindingsAreUntouched) {
  const std::vector<double> times = Seconds(60);
  std::vector<int64_t> values;
  for (int n = 0; n < 60; ++n) values.push_back(n == 30 ? 4096 : 0);
  RobustDriftAnalyzer analyzer;
  DriftFinding finding = analyzer.Analyze(times, values);
  const DriftFinding before = finding;
  ApplySamplingNoise(finding, times, values, {.mean_bytes = 0});
  EXPECT_FALSE(finding.estimated);
  EXPECT_EQ(finding.status, before.status);
}

}  // namespace
}  // namespace dw::report
