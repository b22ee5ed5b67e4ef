// drift_analysis.h: decides whether one time series drifts, behind a swappable interface.
//
// A DriftAnalyzer sees only (time, value) pairs of one series and returns a DriftFinding. The
// collector picks the series (live bytes for heap, live count otherwise) and the unit. The
// default, RobustDriftAnalyzer, finds the end of the warm-up in the data, fits a Theil-Sen slope
// and tests it with Mann-Kendall; OlsDriftAnalyzer (least squares with guards) is the first
// implementation, kept for comparison. Also here: leak budgets (--budget), which accept a known
// growth rate per kind.
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

namespace dw::report {

enum class DriftStatus {
  kSteady,    // no sustained growth (flat, bounded churn, or a one-off step)
  kWarming,   // grew early in the run but is flat at the end
  kDrifting,  // keeps growing
};

// "steady", "warming", "drifting".
const char* DriftStatusName(DriftStatus status);

struct DriftFinding {
  DriftStatus status = DriftStatus::kSteady;
  // Growth per hour, in the unit of the analysed values, over the analysed (post warm-up) window.
  double slope_per_hour = 0.0;
  // False when the series had too few points to judge; status is then kSteady.
  bool enough_samples = false;
  size_t samples_used = 0;  // points after the warm-up
  // OLS: slope / standard error. Robust: the Mann-Kendall z score of the analysed window.
  double t_statistic = 0.0;
  // How sure the analysis is that the series rises: 1 - p of a one-sided test for an upward
  // trend over the analysed window (Mann-Kendall for the robust analyzer), in [0, 1].
  double confidence = 0.0;
  // Where the analysed window starts, in seconds since the series' first point.
  double warmup_end_s = 0.0;
  // The series churns in cycles (allocations freed in batches); the trend was fitted to the
  // trough of each cycle, not to every point.
  bool troughs_only = false;
  // Growth was significant, but at most the --budget for its kind: reported as steady.
  bool within_budget = false;
};

class DriftAnalyzer {
 public:
  virtual ~DriftAnalyzer() = default;
  // `times_s` is strictly increasing and as long as `values`.
  virtual DriftFinding Analyze(std::span<const double> times_s,
                               std::span<const int64_t> values) const = 0;
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

 private:
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
