// drift_analysis.h: decides whether one time series drifts, behind a swappable interface.
//
// A DriftAnalyzer sees only (time, value) pairs of one series and returns a DriftFinding. The
// collector picks the series (live bytes for heap, live count otherwise) and the unit. The
// default, RobustDriftAnalyzer, finds the end of the warm-up in the data, fits a Theil-Sen slope
// and tests it with Mann-Kendall; OlsDriftAnalyzer (least squares with guards) is the first
// implementation, kept for comparison. Also here: leak budgets (--budget), which accept a known
// growth rate per kind, and the sampling noise of heap estimates in sampled mode
// (ApplySamplingNoise; derivation in docs/SAMPLING.md).
//
// Thread-safety: analyzers are immutable after construction; Analyze() is const and may be called
// from any thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "preload/wire_format.h"
#include "report/model/finding.h"

namespace dw::report {

// How noisy a sampled heap estimate is (sampled mode; see ApplySamplingNoise below).
struct SamplingNoise {
  double mean_bytes = 0;   // the sampling mean (Hello.sample_mean_bytes)
  double block_bytes = 0;  // typical block size at the site; 0: unknown, taken as small
};

class DriftAnalyzer {
 public:
  virtual ~DriftAnalyzer() = default;
  // `times_s` is strictly increasing and as long as `values`.
  virtual DriftFinding Analyze(std::span<const double> times_s,
                               std::span<const int64_t> values) const = 0;
  // Values that are sampled estimates with `noise`. By default: Analyze(), then
  // ApplySamplingNoise() with the default options.
  virtual DriftFinding AnalyzeEstimate(std::span<const double> times_s,
                                       std::span<const int64_t> values,
                                       const SamplingNoise& noise) const;
};

// Theil-Sen slope and Mann-Kendall trend test after a warm-up found in the data.
//
// Why these: a leak is a monotonic trend buried in noise, churn and outliers. Theil-Sen (median of
// pairwise slopes) ignores up to ~29% outliers and does not assume normal residuals; Mann-Kendall
// tests monotonic trend from signs only, so a single huge allocation cannot make a flat series
// significant, and its tie correction handles the staircases of count series (fds, threads).
//
// The series is judged on its level: the raw points, or, when it drops by a large part of its
// range at least three times (GC-like batches freed at once), the minimum of each cycle. A leak
// under a sawtooth raises the troughs; the sawtooth alone does not.
//
// Drifting needs all of: a positive slope with confidence >= min_confidence; growth in every
// quarter of the window (not one step, not wandering churn); no single increment carrying half
// of the rise (a step); and no deceleration (the last quarter's rise at least
// max_deceleration of the second quarter's), since growth that slows towards a plateau is a
// warm-up. A series that rose significantly after the start-up but is not drifting is warming.
class RobustDriftAnalyzer : public DriftAnalyzer {
 public:
  struct Options {
    // Seconds skipped before the trend is fitted; unset: found in the data (see WarmupEnd in
    // drift_analysis.cc).
    std::optional<double> warmup_s;
    size_t min_points = 6;                 // total points needed for any verdict
    size_t min_window_points = 5;          // points after the warm-up needed for any verdict
    double min_confidence = 0.999;         // one-sided Mann-Kendall, 1 - p
    double max_deceleration = 0.4;         // late rise / early rise below this: decelerating
    double startup_fraction = 0.1;         // growth inside this first part of the run is start-up
    double max_warmup_fraction = 2.0 / 3;  // a found warm-up ends no later than this
    size_t max_pairs = 20000;              // Theil-Sen pairs; longer series are subsampled
  };

  RobustDriftAnalyzer() : RobustDriftAnalyzer(Options{}) {}
  explicit RobustDriftAnalyzer(Options options) : options_(options) {}

  DriftFinding Analyze(std::span<const double> times_s,
                       std::span<const int64_t> values) const override;
  // As Analyze(), but a warm-up found in the data must also be a deceleration beyond the
  // sampling noise (more of the rise before the split than a constant rate would put there, at
  // min_confidence), so a leak whose samples happened to bunch early is not cut to a plateau;
  // then ApplySamplingNoise() with these options.
  DriftFinding AnalyzeEstimate(std::span<const double> times_s, std::span<const int64_t> values,
                               const SamplingNoise& noise) const override;

 private:
  // `noise_per_byte`: NoisePerByte() of the estimate, 0 for exact values.
  DriftFinding AnalyzeWithNoise(std::span<const double> times_s, std::span<const int64_t> values,
                                double noise_per_byte) const;

  Options options_;
};

// Median of the pairwise slopes (v[j] - v[i]) / (t[j] - t[i]), i < j, per second. With more than
// `max_pairs` pairs, a fixed pseudo-random sample of `max_pairs` pairs (same input, same answer).
// 0 for fewer than two points.
double TheilSenSlope(std::span<const double> times_s, std::span<const int64_t> values,
                     size_t max_pairs = 20000);

struct MannKendall {
  double s = 0;         // sum of sign(v[j] - v[i]) over i < j
  double variance = 0;  // of S under no trend, corrected for ties
  double z = 0;         // continuity-corrected normal score
  double p_up = 1.0;    // one-sided p-value for an upward trend: 1 - Phi(z)
};
MannKendall MannKendallTest(std::span<const int64_t> values);

// Accepted growth per hour for each kind, in the kind's unit (bytes for heap, a count
// otherwise); unset: none.
struct DriftBudgets {
  std::array<std::optional<double>, wire::kKindCount> per_hour;

  std::optional<double> For(wire::Kind kind) const { return per_hour[static_cast<size_t>(kind)]; }
  bool empty() const;
};

// Parses "heap=10MiB/h,fds=0/h,threads=2/min,timers=1/s": kinds heap, fds, threads, timers;
// heap amounts in B, KiB, MiB, GiB (a bare number is bytes); counts for the other kinds; rates
// per h, min or s. Each kind at most once. Errors name the bad item.
absl::StatusOr<DriftBudgets> ParseBudgets(std::string_view text);

// ---- Sampled mode ----------------------------------------------------------------------------
//
// A sampled heap estimate is noisy: with Poisson sampling by bytes at mean m, a live-bytes
// estimate B made of blocks of size s has variance about v(s) * B, where v(s) = s e^(-s/m) /
// (1 - e^(-s/m)) is the noise per byte (m for blocks far smaller than m, near 0 for blocks far
// larger, which are always sampled). docs/SAMPLING.md derives what follows and tabulates it.

// v(s) above, in bytes: the variance of a byte estimate per byte estimated.
double NoisePerByte(const SamplingNoise& noise);

// The one-sided normal quantile of `confidence` (e.g. 3.09 for 0.999).
double NormalQuantile(double confidence);

// Chance that a leak at the rate DetectableRate() gives (or over the window WindowToDetect()
// gives) is shown as drifting: what "needs ~Y to detect" promises.
inline constexpr double kDetectionPower = 0.9;

// Samples' worth of leak a window must hold on average so that, with probability `power`, the
// rise between its first and last quarters (3/4 of the window's) reaches z^2 samples, the
// Poisson significance of a rise: about 19 at z = 3.09 and power 0.9.
double SamplesToDetect(double z, double power = kDetectionPower);

// The smallest leak rate (bytes/s) that a window of `window_s` seconds with `points` censuses
// over a site holding `level_bytes` shows as drifting with probability `power`: the larger of
// the Poisson term SamplesToDetect * v / T and the level-noise term
// (z + z_power) sqrt(12 v B / n) / T (the slope must stand out of the estimate's
// census-to-census noise). docs/SAMPLING.md derives both.
double DetectableRate(const SamplingNoise& noise, double level_bytes, double window_s,
                      size_t points, double z, double power = kDetectionPower);

// How long (seconds) a window must be to show a leak of `rate` bytes/s as drifting with
// probability `power`, censuses every `interval_s`, over a site holding `level_bytes`:
// DetectableRate solved for the window.
double WindowToDetect(const SamplingNoise& noise, double rate, double level_bytes,
                      double interval_s, double z, double power = kDetectionPower);

// Fits the sampling noise into a finding of RobustDriftAnalyzer (`options` as it ran with) on
// sampled heap values: fills the estimate fields; turns drifting into inconclusive when the rise
// is fewer than z^2 effective samples or the slope is within z standard errors of the level
// noise; turns steady or
// warming into inconclusive when the estimate rose significantly (Mann-Kendall at
// min_confidence) by at least one but fewer than z^2 effective samples, and says how long a run
// would show that rate. A finding without enough samples is left as it is.
void ApplySamplingNoise(DriftFinding& finding, std::span<const double> times_s,
                        std::span<const int64_t> values, const SamplingNoise& noise,
                        const RobustDriftAnalyzer::Options& options = {});

// Least-squares slope after a warm-up, accepted as drift only when it is statistically
// significant and the growth is sustained across the window (not one step, not churn).
class OlsDriftAnalyzer : public DriftAnalyzer {
 public:
  struct Options {
    double warmup_fraction = 0.25;  // of the observed points, skipped before fitting
    size_t min_warmup_points = 2;
    size_t min_points = 6;         // total points needed for any verdict
    double min_t_statistic = 4.0;  // slope / standard error
    size_t segments = 4;           // the window is cut in this many parts; each must rise
  };

  OlsDriftAnalyzer() : OlsDriftAnalyzer(Options{}) {}
  explicit OlsDriftAnalyzer(Options options) : options_(options) {}

  DriftFinding Analyze(std::span<const double> times_s,
                       std::span<const int64_t> values) const override;

 private:
  Options options_;
};

}  // namespace dw::report
