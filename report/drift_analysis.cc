#include "report/drift_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dw::report {
namespace {

struct Fit {
  double slope = 0.0;  // per second
  double t_statistic = 0.0;
};

Fit LeastSquares(std::span<const double> t, std::span<const int64_t> v) {
  const size_t n = t.size();
  double mean_t = 0, mean_v = 0;
  for (size_t i = 0; i < n; ++i) {
    mean_t += t[i];
    mean_v += static_cast<double>(v[i]);
  }
  mean_t /= static_cast<double>(n);
  mean_v /= static_cast<double>(n);
  double stt = 0, stv = 0;
  for (size_t i = 0; i < n; ++i) {
    stt += (t[i] - mean_t) * (t[i] - mean_t);
    stv += (t[i] - mean_t) * (static_cast<double>(v[i]) - mean_v);
  }
  Fit fit;
  if (stt <= 0) return fit;
  fit.slope = stv / stt;
  double sse = 0;
  for (size_t i = 0; i < n; ++i) {
    const double residual = static_cast<double>(v[i]) - (mean_v + fit.slope * (t[i] - mean_t));
    sse += residual * residual;
  }
  const double standard_error = n > 2 ? std::sqrt(sse / static_cast<double>(n - 2) / stt) : 0.0;
  // A perfect line has no residual: its slope is as significant as it gets.
  if (standard_error > 0) {
    fit.t_statistic = fit.slope / standard_error;
  } else if (fit.slope != 0) {
    fit.t_statistic = std::copysign(std::numeric_limits<double>::infinity(), fit.slope);
  }
  return fit;
}

double Mean(std::span<const int64_t> v) {
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

// True when the mean of each of `segments` consecutive parts of `v` is above the previous one.
// This is what separates sustained growth from a single step (which raises one boundary only)
// and from churn (whose part means wander up and down).
bool RisesInEverySegment(std::span<const int64_t> v, size_t segments) {
  segments = std::min(segments, v.size());
  if (segments < 2) return false;
  double previous = 0;
  for (size_t s = 0; s < segments; ++s) {
    const size_t begin = v.size() * s / segments;
    const size_t end = v.size() * (s + 1) / segments;
    const double mean = Mean(v.subspan(begin, end - begin));
    if (s > 0 && !(mean > previous)) return false;
    previous = mean;
  }
  return true;
}

double StdDev(std::span<const int64_t> v) {
  if (v.size() < 2) return 0.0;
  const double mean = Mean(v);
  double sum = 0;
  for (int64_t x : v) sum += (static_cast<double>(x) - mean) * (static_cast<double>(x) - mean);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

size_t CountRises(std::span<const int64_t> v) {
  size_t rises = 0;
  for (size_t i = 1; i < v.size(); ++i) rises += v[i] > v[i - 1] ? 1 : 0;
  return rises;
}

}  // namespace

const char* DriftStatusName(DriftStatus status) {
  switch (status) {
    case DriftStatus::kSteady:
      return "steady";
    case DriftStatus::kWarming:
      return "warming";
    case DriftStatus::kDrifting:
      return "drifting";
  }
  return "unknown";
}

DriftFinding OlsDriftAnalyzer::Analyze(std::span<const double> times_s,
                                       std::span<const int64_t> values) const {
  DriftFinding finding;
  const size_t n = std::min(times_s.size(), values.size());
  if (n < options_.min_points) return finding;
  const size_t warmup =
      std::max(options_.min_warmup_points,
               static_cast<size_t>(std::ceil(options_.warmup_fraction * static_cast<double>(n))));
  if (n <= warmup || n - warmup < 4) return finding;
  finding.enough_samples = true;

  const auto window_t = times_s.subspan(warmup, n - warmup);
  const auto window_v = values.subspan(warmup, n - warmup);
  const Fit fit = LeastSquares(window_t, window_v);
  finding.samples_used = window_v.size();
  finding.slope_per_hour = fit.slope * 3600.0;
  finding.t_statistic = fit.t_statistic;

  const bool significant = fit.slope > 0 && fit.t_statistic >= options_.min_t_statistic;
  const bool sustained = RisesInEverySegment(window_v, options_.segments);
  // The end must be clearly above the start, not only by a rounding of the fit.
  const size_t quarter = std::max<size_t>(1, window_v.size() / 4);
  const bool end_above_start = Mean(window_v.last(quarter)) > Mean(window_v.first(quarter));
  if (significant && sustained && end_above_start) {
    finding.status = DriftStatus::kDrifting;
    return finding;
  }

  // Warming: growth in several steps over the first half of the analysed window, then no
  // sustained growth. Growth inside the warm-up itself is start-up, not worth a finding.
  // Requiring more than one rise keeps a single one-off allocation out; requiring the net rise to
  // stand well above the spread at the end keeps churn (a sawtooth) out.
  const auto first_half = window_v.first(window_v.size() / 2);
  const double net_rise = Mean(window_v.last(quarter)) - Mean(window_v.first(quarter));
  if (CountRises(first_half) >= 2 && RisesInEverySegment(first_half, 2) && net_rise > 0 &&
      net_rise > 2 * StdDev(window_v.last(quarter))) {
    finding.status = DriftStatus::kWarming;
  }
  return finding;
}

}  // namespace dw::report
