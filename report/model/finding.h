// finding.h: what the analysis says about one series: its status (steady, warming, drifting,
// inconclusive), slope, confidence and how it was judged. Part of the model (report/model/): the
// plain data the analysis (report/analysis/drift_analysis.h) produces and the outputs read.
//
// Thread-safety: plain data, no internal locking. Allocation: no. Never runs inside a hook.
#pragma once

#include <cstddef>

namespace dw::report {

enum class DriftStatus {
  kSteady,    // no sustained growth (flat, bounded churn, or a one-off step)
  kWarming,   // grew early in the run but is flat at the end
  kDrifting,  // keeps growing
  // Sampled heap only: the estimate rose, but by too few samples to tell a leak from a handful
  // of lucky samples or a one-off step (ApplySamplingNoise). Makes a run inconclusive.
  kInconclusive,
};

// "steady", "warming", "drifting", "inconclusive".
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
  // Of a group of stacks (analysis/site_groups.h): the finding is that of one of its stacks, which
  // drifts on its own while the group's summed series, churned by the others, does not.
  bool judged_on_stack = false;

  // Sampled mode (heap): the series is an estimate from samples every `sample_mean_bytes` bytes
  // on average, judged by ApplySamplingNoise. 0 and false otherwise.
  bool estimated = false;
  double sample_mean_bytes = 0;
  // The analysed window's rise (last quarter's mean over the first's) in effective samples:
  // below z^2 (about 10 at the default confidence) it cannot be told from chance.
  double samples_in_rise = 0;
  // The smallest leak (per hour) that this window could have shown as drifting, given the
  // sampling noise and the number of points.
  double detectable_slope_per_hour = 0;
  // kInconclusive: the rate the estimate rose at (per hour), and how long a run (seconds, from
  // its start) would need to show a leak of that rate as drifting.
  double apparent_slope_per_hour = 0;
  double needed_run_s = 0;
};

}  // namespace dw::report
