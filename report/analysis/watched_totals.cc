#include "report/analysis/watched_totals.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "report/analysis/process_analysis.h"

namespace dw::report {
namespace {

// "fds/sockets"...: static strings, as TotalTrend::name is a const char*.
constexpr const char* kFdClassTrendNames[kFdClassCount] = {"fds/files", "fds/sockets", "fds/pipes",
                                                           "fds/anon_inodes", "fds/others"};

bool WithinBudget(const TotalTrend& trend, const DriftBudgets& budgets) {
  const std::optional<double> budget = budgets.For(trend.kind);
  return budget.has_value() && trend.finding.slope_per_hour <= *budget;
}

// The trends of the descriptor classes that drift.
std::vector<TotalTrend> JudgeFdClasses(const ProcessReport& process,
                                       const DriftAnalyzer& analyzer) {
  std::vector<TotalTrend> trends;
  for (size_t c = 0; c < kFdClassCount; ++c) {
    const SiteSeries* series =
        process.series.Find({wire::Kind::kFds, FdClassSiteId(static_cast<FdClass>(c))});
    if (series == nullptr) continue;
    TotalTrend trend{.name = kFdClassTrendNames[c], .kind = wire::Kind::kFds};
    trend.finding = analyzer.Analyze(process.series.TimesOf(*series), series->live);
    if (trend.finding.status != DriftStatus::kDrifting) continue;
    trend.limit = ProjectToLimit(wire::Kind::kFds, process.totals, process.limits,
                                 trend.finding.slope_per_hour);
    trends.push_back(trend);
  }
  return trends;
}

}  // namespace

void AppendProcSample(const ProcSample& sample, ProcessSeries& series, CensusTotals& totals) {
  Census census;
  census.sequence = series.censuses_seen();
  census.monotonic_ns = sample.monotonic_ns;
  census.realtime_ns = sample.realtime_ns;
  census.totals.rss_bytes = static_cast<uint64_t>(std::max<int64_t>(sample.rss_bytes, 0));
  census.totals.thread_count = static_cast<uint32_t>(std::max<int64_t>(sample.threads, 0));
  if (sample.fds.has_value()) {
    int64_t all = 0;
    for (size_t c = 0; c < kFdClassCount; ++c) {
      const int64_t count = (*sample.fds)[c];
      all += count;
      const uint32_t id = FdClassSiteId(static_cast<FdClass>(c));
      // A class is listed while it has descriptors or a series: an empty class that was never
      // used makes no series, and one emptied for good is compacted by the store.
      if (count == 0 && series.Find({wire::Kind::kFds, id}) == nullptr) continue;
      census.counters[static_cast<size_t>(wire::Kind::kFds)][id] =
          SiteCounters{.acquired = static_cast<uint64_t>(count)};
    }
    census.totals.fd_count = static_cast<uint32_t>(all);
  }
  series.Append(census);
  totals = census.totals;
}

Verdict JudgeWatchedProcess(ProcessReport& process, const DriftAnalyzer& analyzer,
                            const DriftBudgets& budgets) {
  const ProcessSeries& series = process.series;
  const DriftFinding rss = analyzer.Analyze(series.times(), series.rss_bytes());
  process.total_trends.clear();
  JudgeProcessTotals(process, rss, analyzer);
  std::vector<TotalTrend> classes = JudgeFdClasses(process, analyzer);
  if (!classes.empty()) {
    std::erase_if(process.total_trends,
                  [](const TotalTrend& trend) { return trend.name == std::string_view("fds"); });
    process.total_trends.insert(process.total_trends.end(), classes.begin(), classes.end());
  }
  std::erase_if(process.total_trends,
                [&budgets](const TotalTrend& trend) { return WithinBudget(trend, budgets); });
  if (!process.total_trends.empty()) return Verdict::kDrift;
  return rss.enough_samples ? Verdict::kSteady : Verdict::kInconclusive;
}

std::vector<DriftingSite> DriftingTotals(const ProcessReport& process) {
  std::vector<DriftingSite> drifting;
  for (const TotalTrend& trend : process.total_trends) {
    drifting.push_back({.kind = trend.kind,
                        .where = absl::StrCat("total ", trend.name),
                        .slope_per_hour = trend.finding.slope_per_hour,
                        .unit = trend.kind == wire::Kind::kHeap ? "bytes" : "count"});
  }
  return drifting;
}

}  // namespace dw::report
