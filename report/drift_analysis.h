// drift_analysis.h: decides whether one time series drifts, behind a swappable interface.
//
// A DriftAnalyzer sees only (time, value) pairs of one series and returns a DriftFinding. The
// collector picks the series (live bytes for heap, live count otherwise) and the unit. The first
// implementation, OlsDriftAnalyzer, is ordinary least squares with guards; a robust analyzer
// (Theil-Sen / Mann-Kendall) can replace it without touching callers.
//
// Thread-safety: analyzers are immutable after construction; Analyze() is const and may be called
// from any thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

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
  double t_statistic = 0.0;
};

class DriftAnalyzer {
 public:
  virtual ~DriftAnalyzer() = default;
  // `times_s` is strictly increasing and as long as `values`.
  virtual DriftFinding Analyze(std::span<const double> times_s,
                               std::span<const int64_t> values) const = 0;
};

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
