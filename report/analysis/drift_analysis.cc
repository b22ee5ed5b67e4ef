#include "report/analysis/drift_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "report/decode/census.h"

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

// ---- Robust analysis -------------------------------------------------------------------------

double MedianInPlace(std::vector<double>& values) {
  if (values.empty()) return 0.0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

// splitmix64: a fixed, portable pseudo-random sequence, so that subsampled pairs (and thus the
// verdict) are the same on every run over the same data.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The series a trend is judged on: every point, or the trough of each churn cycle.
struct Level {
  std::vector<double> t;
  std::vector<int64_t> v;
  bool troughs = false;
};

// A drop of more than this part of the series' range ends a churn cycle. Noise and leaks rarely
// fall by a third of everything the series spans in one census; batch frees do every cycle.
constexpr double kCycleDropFraction = 0.3;
constexpr size_t kMinCycleDrops = 3;

double Difference(int64_t a, int64_t b) { return static_cast<double>(a) - static_cast<double>(b); }

Level LevelOf(std::span<const double> t, std::span<const int64_t> v) {
  Level level;
  const size_t n = v.size();
  // Against the whole range, so that noise on a plateau (small drops after a large rise) is not
  // mistaken for cycles; a sawtooth with a leak underneath keeps drops of about its amplitude.
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  // Differences in double: a hostile stream can send values whose int64 difference overflows.
  const double range = Difference(*hi, *lo);
  std::vector<size_t> landings;  // first point of each cycle after a drop
  if (range > 0) {
    for (size_t i = 1; i < n; ++i) {
      if (Difference(v[i - 1], v[i]) > kCycleDropFraction * range) landings.push_back(i);
    }
  }
  if (landings.size() < kMinCycleDrops) {
    level.t.assign(t.begin(), t.end());
    level.v.assign(v.begin(), v.end());
    return level;
  }
  level.troughs = true;
  landings.insert(landings.begin(), 0);
  landings.push_back(n);
  for (size_t c = 0; c + 1 < landings.size(); ++c) {
    size_t best = landings[c];
    for (size_t i = landings[c]; i < landings[c + 1]; ++i) {
      if (v[i] < v[best]) best = i;
    }
    level.t.push_back(t[best]);
    level.v.push_back(v[best]);
  }
  return level;
}

// Least-squares line over [begin, end) from prefix sums: slope and residual sum of squares.
struct PrefixSums {
  std::vector<double> n, t, v, tt, tv, vv;

  PrefixSums(std::span<const double> times, std::span<const int64_t> values) {
    const size_t m = values.size();
    for (auto* sums : {&n, &t, &v, &tt, &tv, &vv}) sums->assign(m + 1, 0.0);
    // Relative to the first point: keeps the squares small enough for doubles to stay exact.
    for (size_t i = 0; i < m; ++i) {
      const double x = times[i] - times[0];
      const double y = Difference(values[i], values[0]);
      n[i + 1] = n[i] + 1;
      t[i + 1] = t[i] + x;
      v[i + 1] = v[i] + y;
      tt[i + 1] = tt[i] + x * x;
      tv[i + 1] = tv[i] + x * y;
      vv[i + 1] = vv[i] + y * y;
    }
  }

  void Line(size_t begin, size_t end, double& slope, double& sse) const {
    const double k = n[end] - n[begin];
    const double st = t[end] - t[begin], sv = v[end] - v[begin];
    const double ctt = (tt[end] - tt[begin]) - st * st / k;
    const double ctv = (tv[end] - tv[begin]) - st * sv / k;
    const double cvv = (vv[end] - vv[begin]) - sv * sv / k;
    slope = ctt > 0 ? ctv / ctt : 0.0;
    sse = std::max(0.0, cvv - slope * ctv);
  }
};

// The end of the warm-up, as an index into the level series.
//
// Warm-up is the start of a run in which the series grows faster than it does afterwards
// (caches filling, pools opening, arenas mapping). We look for that shape directly: the split
// point that best fits the series as two straight lines (least squares, over every split that
// leaves the window enough points). The split is a warm-up end when the fit improves a lot over
// one line (the series really has two regimes) and the growth rate after it is less than half
// the rate before it (deceleration). A leak with a start-up burst splits at the end of the
// burst; a steady leak has no better split; a cache that fills and holds splits where it is full.
// Otherwise only the first `startup_fraction` of the run (the first censuses of a starting
// process) is skipped.
// With sampled estimates (`noise_per_byte` > 0), the deceleration must also stand out of the
// Poisson noise of the samples: under a constant rate, the samples' worth of rise before the
// split is binomial with the split's share of the time; a warm-up needs it z above that.
bool DeceleratesBeyondNoise(const Level& level, size_t split, double noise_per_byte, double z) {
  const size_t m = level.v.size();
  const double span = level.t[m - 1] - level.t[0];
  if (!(noise_per_byte > 0) || !(span > 0)) return true;
  const double before = std::max(0.0, Difference(level.v[split], level.v[0])) / noise_per_byte;
  const double after = std::max(0.0, Difference(level.v[m - 1], level.v[split])) / noise_per_byte;
  const double total = before + after;
  const double share = (level.t[split] - level.t[0]) / span;
  const double spread = std::sqrt(total * share * (1 - share));
  return spread > 0 && (before - total * share) / spread >= z;
}

size_t WarmupEnd(const Level& level, const RobustDriftAnalyzer::Options& options,
                 double noise_per_byte, double z) {
  const size_t m = level.v.size();
  const size_t startup = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(options.startup_fraction * static_cast<double>(m))));
  if (m < 2 * options.min_window_points) return std::min(startup, m);
  const PrefixSums sums(level.t, level.v);
  double single_slope = 0, single_sse = 0;
  sums.Line(0, m, single_slope, single_sse);
  const size_t last =
      std::min(m - options.min_window_points,
               static_cast<size_t>(options.max_warmup_fraction * static_cast<double>(m)));
  double best_sse = std::numeric_limits<double>::infinity();
  size_t best = 0;
  double best_left = 0, best_right = 0;
  for (size_t k = 3; k <= last; ++k) {
    double left_slope, left_sse, right_slope, right_sse;
    sums.Line(0, k, left_slope, left_sse);
    sums.Line(k, m, right_slope, right_sse);
    if (left_sse + right_sse < best_sse) {
      best_sse = left_sse + right_sse;
      best = k;
      best_left = left_slope;
      best_right = right_slope;
    }
  }
  const bool two_regimes = best > 0 && best_sse <= 0.5 * single_sse;
  const bool decelerates = best_left > 0 && best_right < 0.5 * best_left &&
                           DeceleratesBeyondNoise(level, best, noise_per_byte, z);
  return two_regimes && decelerates ? std::max(best, startup) : startup;
}

double MeanOf(std::span<const int64_t> v, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += static_cast<double>(v[i]);
  return end > begin ? sum / static_cast<double>(end - begin) : 0.0;
}

// Means of value and time of the four quarters (by index) of a series of at least 4 points.
struct Quarters {
  std::array<double, 4> v{};
  std::array<double, 4> t{};

  // Growth rate between the means of quarters a and b: per second, so that unevenly spaced
  // points (a downsampled history) compare correctly.
  double Rate(size_t a, size_t b) const { return t[b] > t[a] ? (v[b] - v[a]) / (t[b] - t[a]) : 0; }
};

Quarters QuartersOf(std::span<const double> t, std::span<const int64_t> v) {
  Quarters q;
  for (size_t i = 0; i < 4; ++i) {
    const size_t begin = v.size() * i / 4, end = v.size() * (i + 1) / 4;
    q.v[i] = MeanOf(v, begin, end);
    double sum = 0;
    for (size_t j = begin; j < end; ++j) sum += t[j];
    q.t[i] = end > begin ? sum / static_cast<double>(end - begin) : 0.0;
  }
  return q;
}

// How many points at the end of `v` (at most 2, or 5% of a long series) lie below a final drop
// of more than kCycleDropFraction of the range before it; 0 when there is no such drop.
size_t TeardownPoints(std::span<const int64_t> v) {
  const size_t n = v.size();
  const size_t max_tail = std::max<size_t>(2, n / 20);
  if (n < 8) return 0;
  for (size_t tail = max_tail; tail >= 1; --tail) {
    const auto body = v.first(n - tail);
    const auto [lo, hi] = std::minmax_element(body.begin(), body.end());
    const double range = Difference(*hi, *lo);
    const int64_t highest_after =
        *std::max_element(v.end() - static_cast<ptrdiff_t>(tail), v.end());
    if (range > 0 && Difference(body.back(), highest_after) > kCycleDropFraction * range) {
      return tail;
    }
  }
  return 0;
}

double NormalUpperTail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

}  // namespace

double TheilSenSlope(std::span<const double> times_s, std::span<const int64_t> values,
                     size_t max_pairs) {
  const size_t m = std::min(times_s.size(), values.size());
  if (m < 2) return 0.0;
  std::vector<double> slopes;
  const auto add = [&](size_t i, size_t j) {
    const double dt = times_s[j] - times_s[i];
    if (dt > 0) slopes.push_back(Difference(values[j], values[i]) / dt);
  };
  const size_t pairs = m * (m - 1) / 2;
  if (pairs <= std::max<size_t>(max_pairs, 1)) {
    slopes.reserve(pairs);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = i + 1; j < m; ++j) add(i, j);
    }
  } else {
    // A uniform sample of pairs: the median of a 20k sample is within about a percent (in rank)
    // of the full median, at a fixed cost however long the series.
    slopes.reserve(max_pairs);
    uint64_t state = 0x5eed;
    while (slopes.size() < max_pairs) {
      const size_t i = SplitMix64(state) % m;
      const size_t j = SplitMix64(state) % m;
      if (i != j) add(std::min(i, j), std::max(i, j));
    }
  }
  return MedianInPlace(slopes);
}

MannKendall MannKendallTest(std::span<const int64_t> values) {
  MannKendall result;
  const size_t m = values.size();
  if (m < 2) return result;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = i + 1; j < m; ++j) {
      result.s += values[j] > values[i] ? 1 : (values[j] < values[i] ? -1 : 0);
    }
  }
  // Ties shrink the variance: count the size of every group of equal values.
  std::vector<int64_t> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const auto term = [](double g) { return g * (g - 1) * (2 * g + 5); };
  double ties = 0;
  for (size_t i = 0; i < m;) {
    size_t j = i;
    while (j < m && sorted[j] == sorted[i]) ++j;
    ties += term(static_cast<double>(j - i));
    i = j;
  }
  result.variance = (term(static_cast<double>(m)) - ties) / 18.0;
  if (result.variance <= 0) return result;  // all equal: no evidence of any trend
  const double corrected = result.s > 0 ? result.s - 1 : (result.s < 0 ? result.s + 1 : 0);
  result.z = corrected / std::sqrt(result.variance);
  result.p_up = NormalUpperTail(result.z);
  return result;
}

DriftFinding DriftAnalyzer::AnalyzeEstimate(std::span<const double> times_s,
                                            std::span<const int64_t> values,
                                            const SamplingNoise& noise) const {
  DriftFinding finding = Analyze(times_s, values);
  ApplySamplingNoise(finding, times_s, values, noise);
  return finding;
}

DriftFinding RobustDriftAnalyzer::Analyze(std::span<const double> times_s,
                                          std::span<const int64_t> values) const {
  return AnalyzeWithNoise(times_s, values, 0.0);
}

DriftFinding RobustDriftAnalyzer::AnalyzeEstimate(std::span<const double> times_s,
                                                  std::span<const int64_t> values,
                                                  const SamplingNoise& noise) const {
  DriftFinding finding = AnalyzeWithNoise(times_s, values, NoisePerByte(noise));
  ApplySamplingNoise(finding, times_s, values, noise, options_);
  return finding;
}

DriftFinding RobustDriftAnalyzer::AnalyzeWithNoise(std::span<const double> times_s,
                                                   std::span<const int64_t> values,
                                                   double noise_per_byte) const {
  DriftFinding finding;
  const size_t n = std::min(times_s.size(), values.size());
  if (n < options_.min_points) return finding;
  times_s = times_s.first(n);
  values = values.first(n);
  // Teardown: exit-time destructors and atexit handlers free what the process held, so its last
  // census or two may fall to nothing. That says nothing about how it behaved while it ran, and
  // would hide a leak behind a final drop; those points are left out.
  const size_t tail = TeardownPoints(values);
  times_s = times_s.first(n - tail);
  values = values.first(n - tail);

  const Level level = LevelOf(times_s, values);
  finding.troughs_only = level.troughs;
  size_t warmup = 0;
  if (options_.warmup_s.has_value()) {
    while (warmup < level.t.size() && level.t[warmup] - times_s[0] < *options_.warmup_s) ++warmup;
  } else {
    const double z = noise_per_byte > 0 ? NormalQuantile(options_.min_confidence) : 0.0;
    warmup = WarmupEnd(level, options_, noise_per_byte, z);
  }
  finding.warmup_end_s = warmup < level.t.size() ? level.t[warmup] - times_s[0] : 0.0;
  const size_t raw_after_warmup =
      static_cast<size_t>(times_s.end() - std::lower_bound(times_s.begin(), times_s.end(),
                                                           times_s[0] + finding.warmup_end_s));
  if (warmup >= level.t.size() || raw_after_warmup < options_.min_window_points) return finding;
  finding.enough_samples = true;

  const auto window_t = std::span<const double>(level.t).subspan(warmup);
  const auto window_v = std::span<const int64_t>(level.v).subspan(warmup);
  finding.samples_used = window_v.size();
  if (window_v.size() < 4) return finding;  // a few cycles only: cannot tell troughs apart
  const MannKendall trend = MannKendallTest(window_v);
  finding.slope_per_hour = TheilSenSlope(window_t, window_v, options_.max_pairs) * 3600.0;
  finding.t_statistic = trend.z;
  finding.confidence = 1.0 - trend.p_up;

  const Quarters quarters = QuartersOf(window_t, window_v);
  const std::array<double, 4>& q = quarters.v;
  const bool significant =
      finding.slope_per_hour > 0 && finding.confidence >= options_.min_confidence;
  const bool sustained = q[0] < q[1] && q[1] < q[2] && q[2] < q[3];
  double largest_rise = 0;
  for (size_t i = 1; i < window_v.size(); ++i) {
    largest_rise = std::max(largest_rise, Difference(window_v[i], window_v[i - 1]));
  }
  const bool not_a_step = largest_rise < 0.5 * (q[3] - q[0]);
  const bool decelerating = quarters.Rate(2, 3) < options_.max_deceleration * quarters.Rate(0, 1);
  if (significant && sustained && not_a_step && !decelerating) {
    finding.status = DriftStatus::kDrifting;
    return finding;
  }

  // Warming: rose significantly after the start-up, in more than one step, by more than the
  // spread it settles into. Growth within the start-up itself is not worth a finding.
  const size_t startup =
      std::max<size_t>(1, static_cast<size_t>(std::ceil(options_.startup_fraction *
                                                        static_cast<double>(level.v.size()))));
  const auto grown = std::span<const int64_t>(level.v).subspan(std::min(startup, level.v.size()));
  if (grown.size() < 4) return finding;
  const size_t quarter = std::max<size_t>(1, grown.size() / 4);
  const double net_rise = Mean(grown.last(quarter)) - Mean(grown.first(quarter));
  if (1.0 - MannKendallTest(grown).p_up >= options_.min_confidence && CountRises(grown) >= 2 &&
      net_rise > 0 && net_rise > 2 * StdDev(grown.last(quarter))) {
    finding.status = DriftStatus::kWarming;
  }
  return finding;
}

// ---- Sampled mode ----------------------------------------------------------------------------

double NoisePerByte(const SamplingNoise& noise) {
  const double m = noise.mean_bytes;
  if (!(m > 0)) return 0.0;
  const double s = noise.block_bytes;
  // Small blocks (or unknown size): each sample stands for ~m bytes, variance m per byte.
  if (!(s > 0) || s < 1e-6 * m) return m;
  const double x = s / m;
  if (x > 700) return 0.0;  // exp(-x) underflows: every such block is sampled, no noise
  // Var(w s) / (s) for w = 1/p with probability p = 1 - e^-x: s (1 - p) / p.
  return s * std::exp(-x) / -std::expm1(-x);
}

double NormalQuantile(double confidence) {
  confidence = std::clamp(confidence, 0.5, 1.0 - 1e-15);
  double lo = 0, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (NormalUpperTail(mid) > 1.0 - confidence ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

namespace {

// The share of a window's rise that lies between the means of its first and last quarters.
constexpr double kQuarterRiseShare = 0.75;

// The level-noise term's multiplier: z for the test, plus the power's quantile.
double LevelFactor(double z, double power) {
  return z + (power > 0.5 ? NormalQuantile(power) : 0.0);
}

}  // namespace

double SamplesToDetect(double z, double power) {
  const double beta = power > 0.5 ? NormalQuantile(power) : 0.0;
  // Counts c of the quarters' rise, Poisson with mean 0.75 L: c >= z^2 with probability `power`
  // when 0.75 L - beta sqrt(0.75 L) = z^2, i.e. sqrt(0.75 L) = (beta + sqrt(beta^2 + 4 z^2)) / 2.
  const double root = (beta + std::sqrt(beta * beta + 4 * z * z)) / 2;
  return root * root / kQuarterRiseShare;
}

double DetectableRate(const SamplingNoise& noise, double level_bytes, double window_s,
                      size_t points, double z, double power) {
  const double v = NoisePerByte(noise);
  if (!(window_s > 0) || points == 0) return std::numeric_limits<double>::infinity();
  const double poisson = SamplesToDetect(z, power) * v / window_s;
  const double level =
      LevelFactor(z, power) *
      std::sqrt(12.0 * v * std::max(0.0, level_bytes) / static_cast<double>(points)) / window_s;
  return std::max(poisson, level);
}

double WindowToDetect(const SamplingNoise& noise, double rate, double level_bytes,
                      double interval_s, double z, double power) {
  if (!(rate > 0)) return std::numeric_limits<double>::infinity();
  const double v = NoisePerByte(noise);
  const double poisson = SamplesToDetect(z, power) * v / rate;
  // k sqrt(12 v B dt) / T^(3/2) = rate, with n = T / dt points.
  const double level = std::pow(
      LevelFactor(z, power) * std::sqrt(12.0 * v * std::max(0.0, level_bytes) * interval_s) / rate,
      2.0 / 3);
  return std::max(poisson, level);
}

void ApplySamplingNoise(DriftFinding& finding, std::span<const double> times_s,
                        std::span<const int64_t> values, const SamplingNoise& noise,
                        const RobustDriftAnalyzer::Options& options) {
  const size_t n = std::min(times_s.size(), values.size());
  if (n == 0 || !(noise.mean_bytes > 0)) return;
  finding.estimated = true;
  finding.sample_mean_bytes = noise.mean_bytes;
  if (!finding.enough_samples) return;
  // The analysed window, on the raw points (the noise is per census, troughs or not).
  const double start = times_s[0] + finding.warmup_end_s;
  const size_t first = static_cast<size_t>(
      std::lower_bound(times_s.begin(), times_s.begin() + n, start) - times_s.begin());
  const auto window_t = times_s.subspan(first, n - first);
  const auto window_v = values.subspan(first, n - first);
  if (window_v.size() < 4) return;
  const double window_s = window_t.back() - window_t.front();
  const double interval_s = window_s / static_cast<double>(window_v.size() - 1);
  const double z = NormalQuantile(options.min_confidence);
  const double v = NoisePerByte(noise);
  const double level = std::max(0.0, Mean(window_v));
  const Quarters quarters = QuartersOf(window_t, window_v);
  const double rise = quarters.v[3] - quarters.v[0];
  finding.samples_in_rise = v > 0 ? rise / v : std::numeric_limits<double>::infinity();
  finding.detectable_slope_per_hour =
      DetectableRate(noise, level, window_s, window_v.size(), z) * 3600.0;
  // The test itself (power 0.5): the slope must stand z standard errors out of the level noise.
  const double level_noise =
      z * std::sqrt(12.0 * v * level / static_cast<double>(window_v.size())) / window_s;

  // The rate the estimate rose at: Theil-Sen, or the quarters' when a few sample steps leave
  // the median pairwise slope at 0.
  const double apparent = std::max(finding.slope_per_hour / 3600.0, quarters.Rate(0, 3));
  const bool resolved = finding.samples_in_rise >= z * z && apparent >= level_noise;
  // Several samples' worth arriving in one census is a burst (a one-off step): a leak slow
  // enough to be under-sampled almost never puts two samples in one interval.
  double largest_rise = 0;
  for (size_t i = 1; i < window_v.size(); ++i) {
    largest_rise = std::max(largest_rise, Difference(window_v[i], window_v[i - 1]));
  }
  const bool burst = largest_rise >= std::max(2.0 * v, 0.5 * rise);
  bool unresolved_rise = false;
  if (finding.status == DriftStatus::kDrifting) {
    unresolved_rise = !resolved;
  } else {
    // Rose by at least about one sample, with a significant upward trend, but too little to
    // trust the shape the analysis judged (a plateau, a single sample's step): a slow leak
    // looks like this.
    unresolved_rise = !resolved && !burst && finding.samples_in_rise >= 1.0 &&
                      finding.confidence >= options.min_confidence;
  }
  if (!unresolved_rise) return;
  finding.status = DriftStatus::kInconclusive;
  finding.apparent_slope_per_hour = apparent * 3600.0;
  const double window = WindowToDetect(noise, apparent, level, interval_s, z);
  // The warm-up is skipped first; at least startup_fraction of any run is.
  finding.needed_run_s =
      std::max(window / (1.0 - options.startup_fraction), finding.warmup_end_s + window);
}

// ---- Budgets ---------------------------------------------------------------------------------

bool DriftBudgets::empty() const {
  for (const auto& budget : per_hour) {
    if (budget.has_value()) return false;
  }
  return true;
}

absl::StatusOr<DriftBudgets> ParseBudgets(std::string_view std_text) {
  // This abseil's string_view is its own type, not std::string_view.
  const absl::string_view text(std_text.data(), std_text.size());
  DriftBudgets budgets;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("--budget is empty; expected e.g. heap=10MiB/h,fds=0/h");
  }
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    const auto bad = [&](const char* why) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --budget item '", item, "': ", why,
                       " (expected KIND=AMOUNT/UNIT, e.g. heap=10MiB/h, fds=0/h, threads=2/min)"));
    };
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) return bad("no '='");
    const absl::string_view kind_name = item.substr(0, eq);
    std::optional<wire::Kind> kind;
    for (uint32_t k = 0; k < wire::kKindCount; ++k) {
      if (kind_name == KindName(static_cast<wire::Kind>(k))) kind = static_cast<wire::Kind>(k);
    }
    if (!kind.has_value()) return bad("unknown kind (heap, fds, threads, timers)");
    if (budgets.For(*kind).has_value()) return bad("kind given twice");
    absl::string_view rate = item.substr(eq + 1);
    const size_t slash = rate.rfind('/');
    if (slash == absl::string_view::npos) return bad("no rate unit (/h, /min or /s)");
    const absl::string_view per = rate.substr(slash + 1);
    double seconds_per_unit = 0;
    if (per == "h") {
      seconds_per_unit = 3600;
    } else if (per == "min") {
      seconds_per_unit = 60;
    } else if (per == "s") {
      seconds_per_unit = 1;
    } else {
      return bad("rate unit must be /h, /min or /s");
    }
    absl::string_view amount = rate.substr(0, slash);
    double scale = 1;
    if (*kind == wire::Kind::kHeap) {
      // Longest suffix first: "KiB" before "B".
      for (const auto& [suffix, factor] :
           {std::pair<const char*, double>{"GiB", 1024.0 * 1024 * 1024},
            {"MiB", 1024.0 * 1024},
            {"KiB", 1024.0},
            {"B", 1.0}}) {
        if (absl::ConsumeSuffix(&amount, suffix)) {
          scale = factor;
          break;
        }
      }
    }
    double value = 0;
    if (amount.empty() || !absl::SimpleAtod(amount, &value) || !std::isfinite(value) || value < 0) {
      return bad(*kind == wire::Kind::kHeap
                     ? "amount must be a non-negative number with B, KiB, MiB or GiB"
                     : "amount must be a non-negative count");
    }
    // Reject what SimpleAtod would accept but a person would not mean: "inf", "nan", "1e3".
    for (char c : amount) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') {
        return bad("amount must be a plain decimal number");
      }
    }
    budgets.per_hour[static_cast<size_t>(*kind)] = value * scale * 3600.0 / seconds_per_unit;
  }
  return budgets;
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
