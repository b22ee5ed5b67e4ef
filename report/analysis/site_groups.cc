#include "report/analysis/site_groups.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "fmt/format.h"
#include "report/analysis/process_analysis.h"
#include "report/store/process_series.h"

namespace dw::report {
namespace {

// The value of a member at each time of `axis`: 0 before its first point, then its latest.
template <typename Visit>
void WalkOnAxis(std::span<const double> axis, std::span<const double> times,
                std::span<const int64_t> values, Visit visit) {
  size_t j = 0;
  int64_t current = 0;
  for (size_t i = 0; i < axis.size(); ++i) {
    while (j < times.size() && times[j] <= axis[i]) current = values[j++];
    visit(i, current);
  }
}

std::span<const int64_t> ValuesOf(const SiteSeries& points, wire::Kind kind) {
  return kind == wire::Kind::kHeap ? points.live_bytes : points.live;
}

int64_t LatestValue(const SiteReport& site) {
  return site.kind == wire::Kind::kHeap ? site.live_bytes : site.live;
}

// Threads of the group's members together: counts add up, the longest idle time is the
// longest of any, and the wait channel is that of the member with the most blocked threads.
std::optional<ThreadSiteState> SumThreadStates(const std::vector<SiteReport>& sites,
                                               const std::vector<size_t>& indices) {
  std::optional<ThreadSiteState> total;
  uint64_t most_blocked = 0;
  for (size_t index : indices) {
    const std::optional<ThreadSiteState>& state = sites[index].thread_state;
    if (!state.has_value()) continue;
    if (!total.has_value()) total.emplace();
    total->running += state->running;
    total->sleeping += state->sleeping;
    total->disk_sleeping += state->disk_sleeping;
    total->stopped += state->stopped;
    total->exited_unjoined += state->exited_unjoined;
    total->idle_over_minute += state->idle_over_minute;
    total->longest_idle_ms = std::max(total->longest_idle_ms, state->longest_idle_ms);
    const uint64_t blocked = uint64_t{state->sleeping} + state->disk_sleeping;
    if (!state->wchan.empty() && (total->wchan.empty() || blocked > most_blocked)) {
      total->wchan = state->wchan;
      most_blocked = blocked;
    }
  }
  return total;
}

// The analysis of one series, with the sampling noise when it is a sampled heap estimate.
DriftFinding Judge(const DriftAnalyzer& analyzer, const ProcessReport& process, wire::Kind kind,
                   std::span<const double> times, std::span<const int64_t> values,
                   double block_bytes) {
  if (kind == wire::Kind::kHeap && process.mode == wire::kModeSampled &&
      process.sample_mean_bytes > 0) {
    return analyzer.AnalyzeEstimate(
        times, values,
        {.mean_bytes = static_cast<double>(process.sample_mean_bytes), .block_bytes = block_bytes});
  }
  return analyzer.Analyze(times, values);
}

// Average block size of a heap site or group, for the sampling noise: from the live blocks, or
// from all it ever allocated when nothing is live.
double BlockBytes(const SiteCounters& counters) {
  if (counters.Live() > 0 && counters.LiveBytes() > 0) {
    return static_cast<double>(counters.LiveBytes()) / static_cast<double>(counters.Live());
  }
  return counters.acquired > 0
             ? static_cast<double>(counters.acquired_bytes) / static_cast<double>(counters.acquired)
             : 0.0;
}

// The summary SiteReport of a group: the top member's stack, everything else summed.
SiteReport Summarise(const ProcessReport& process, const std::vector<size_t>& indices,
                     std::vector<GroupMember> members) {
  const std::vector<SiteReport>& sites = process.sites;
  SiteReport group = sites[members.front().site_index];
  group.counters = {};
  group.live = 0;
  group.live_bytes = 0;
  for (size_t index : indices) {
    const SiteReport& site = sites[index];
    // Cumulative counters wrap like the shim's; live figures saturate (hostile streams).
    group.counters.acquired += site.counters.acquired;
    group.counters.released += site.counters.released;
    group.counters.acquired_bytes += site.counters.acquired_bytes;
    group.counters.released_bytes += site.counters.released_bytes;
    group.counters.detail |= site.counters.detail;
    AddSaturating(group.live, site.live);
    AddSaturating(group.live_bytes, site.live_bytes);
  }
  group.detail = group.counters.detail;
  if (group.kind == wire::Kind::kFds) group.fd_types = FdTypeNames(group.detail);
  if (group.kind == wire::Kind::kTimers) group.timer_notify = TimerNotifyNames(group.detail);
  if (group.kind == wire::Kind::kThreads) group.thread_state = SumThreadStates(sites, indices);
  group.finding = {};
  group.limit.reset();
  group.members = std::move(members);
  return group;
}

// A leak at one stack can hide in the sum of a site whose other stacks churn far more: their
// noise drowns its trend. When the sum is not drifting but one of the largest stacks is on its
// own, that stack's finding is the group's (marked judged_on_stack), as exact per-stack
// analysis would have found it.
void PromoteDriftingMember(SiteReport& group, const std::vector<SiteReport>& sites) {
  if (group.finding.status == DriftStatus::kDrifting || group.members.size() < 2) return;
  for (const GroupMember& member : group.members) {
    if (!member.analysed) continue;
    const SiteReport& site = sites[member.site_index];
    if (site.finding.status != DriftStatus::kDrifting) continue;
    group.finding = site.finding;
    group.finding.judged_on_stack = true;
    group.limit = site.limit;
    return;
  }
}

}  // namespace

std::string GroupKey(const SiteReport& site) {
  const int kind = static_cast<int>(site.kind);
  if (site.frames.empty()) return fmt::format("{}|site {}", kind, site.site_id);
  const Frame& frame = site.frames[std::min(site.headline, site.frames.size() - 1)];
  if (!frame.function.empty()) {
    return fmt::format("{}|{}|{}|{}", kind, frame.function, frame.file, frame.line);
  }
  if (!frame.module.empty()) {
    return fmt::format("{}|{}+{:#x}", kind, frame.module, frame.module_offset);
  }
  return fmt::format("{}|{:#x}", kind, frame.address);
}

SummedSeries SumSeries(const ProcessSeries& series, wire::Kind kind,
                       std::span<const uint32_t> site_ids) {
  SummedSeries sum;
  std::vector<const SiteSeries*> members;
  double start = std::numeric_limits<double>::infinity();
  for (uint32_t id : site_ids) {
    const SiteSeries* points = series.Find({kind, id});
    if (points == nullptr || points->live.empty()) continue;
    members.push_back(points);
    start = std::min(start, series.TimesOf(*points).front());
  }
  if (members.empty()) return sum;
  const std::vector<double>& all = series.times();
  sum.times.assign(std::lower_bound(all.begin(), all.end(), start), all.end());
  sum.values.assign(sum.times.size(), 0);
  for (const SiteSeries* points : members) {
    WalkOnAxis(sum.times, series.TimesOf(*points), ValuesOf(*points, kind),
               [&](size_t i, int64_t value) { AddSaturating(sum.values[i], value); });
  }
  return sum;
}

void ApplyBudgetAndLimit(SiteReport& site, const DriftBudgets& budgets, const CensusTotals& totals,
                         const std::optional<ProcessLimits>& limits) {
  site.budget_per_hour = budgets.For(site.kind);
  if (site.finding.status == DriftStatus::kDrifting && site.budget_per_hour.has_value() &&
      site.finding.slope_per_hour <= *site.budget_per_hour) {
    site.finding.status = DriftStatus::kSteady;
    site.finding.within_budget = true;
  }
  site.limit.reset();
  if (site.finding.status == DriftStatus::kDrifting || site.finding.within_budget) {
    site.limit = ProjectToLimit(site.kind, totals, limits, site.finding.slope_per_hour);
  }
}

void BuildSiteGroups(ProcessReport& process, const DriftAnalyzer& analyzer,
                     const DriftBudgets& budgets) {
  std::vector<SiteReport>& sites = process.sites;
  // Members of each group in site order, groups in the order of their first member.
  std::vector<std::vector<size_t>> groups;
  {
    absl::flat_hash_map<std::string, size_t> by_key;
    for (size_t i = 0; i < sites.size(); ++i) {
      const auto [it, added] = by_key.try_emplace(GroupKey(sites[i]), groups.size());
      if (added) groups.emplace_back();
      groups[it->second].push_back(i);
    }
  }
  process.groups.clear();
  process.groups.reserve(groups.size());
  std::vector<uint32_t> ids;
  for (const std::vector<size_t>& indices : groups) {
    const wire::Kind kind = sites[indices.front()].kind;
    ids.clear();
    for (size_t index : indices) ids.push_back(sites[index].site_id);
    const SummedSeries sum = SumSeries(process.series, kind, ids);

    // Contributions over the group's analysed window, from a first analysis of the sum.
    SiteCounters counters;
    for (size_t index : indices) {
      counters.acquired += sites[index].counters.acquired;
      counters.acquired_bytes += sites[index].counters.acquired_bytes;
      counters.released += sites[index].counters.released;
      counters.released_bytes += sites[index].counters.released_bytes;
    }
    const DriftFinding finding =
        Judge(analyzer, process, kind, sum.times, sum.values, BlockBytes(counters));
    const double window_start = sum.times.empty() ? 0.0 : sum.times[0] + finding.warmup_end_s;
    int64_t group_latest = 0;
    for (size_t index : indices) AddSaturating(group_latest, LatestValue(sites[index]));
    std::vector<GroupMember> members;
    members.reserve(indices.size());
    for (size_t index : indices) {
      const SiteReport& site = sites[index];
      GroupMember member{.site_id = site.site_id,
                         .site_index = index,
                         .live = site.live,
                         .live_bytes = site.live_bytes};
      const int64_t latest = LatestValue(site);
      member.share = group_latest != 0 ? static_cast<double>(latest) / group_latest : 0.0;
      if (const SiteSeries* points = process.series.Find({kind, site.site_id})) {
        const std::span<const double> times = process.series.TimesOf(*points);
        const std::span<const int64_t> values = ValuesOf(*points, kind);
        const auto at_start = std::upper_bound(times.begin(), times.end(), window_start);
        const double before =
            at_start == times.begin()
                ? 0.0
                : static_cast<double>(values[static_cast<size_t>(at_start - times.begin()) - 1]);
        member.growth = static_cast<double>(values.back()) - before;
        // Rises minus falls between its censuses in the window: a steady leak scores near the
        // number of points, churn near 0, however large its swings.
        for (size_t i = static_cast<size_t>(at_start - times.begin()) + 1; i < values.size(); ++i) {
          member.steadiness += values[i] > values[i - 1] ? 1 : (values[i] < values[i - 1] ? -1 : 0);
        }
      }
      members.push_back(member);
    }
    std::stable_sort(members.begin(), members.end(),
                     [](const GroupMember& a, const GroupMember& b) {
                       if (a.growth != b.growth) return a.growth > b.growth;
                       return a.share > b.share;
                     });
    // The largest members on their own, and the most steadily rising ones (a small leak among
    // big churners); a group of one is its member.
    for (size_t m = 0; m < members.size() && m < kAnalysedMembers; ++m) members[m].analysed = true;
    if (members.size() > kAnalysedMembers) {
      std::vector<size_t> order(members.size() - kAnalysedMembers);
      for (size_t i = 0; i < order.size(); ++i) order[i] = kAnalysedMembers + i;
      const size_t extra = std::min(kAnalysedMembers, order.size());
      std::partial_sort(
          order.begin(), order.begin() + static_cast<ptrdiff_t>(extra), order.end(),
          [&](size_t a, size_t b) { return members[a].steadiness > members[b].steadiness; });
      for (size_t i = 0; i < extra; ++i) {
        if (members[order[i]].steadiness > 0) members[order[i]].analysed = true;
      }
    }
    for (size_t m = 0; m < members.size(); ++m) {
      if (!members[m].analysed) continue;
      SiteReport& site = sites[members[m].site_index];
      if (members.size() == 1) {
        site.finding = finding;
      } else if (const SiteSeries* points = process.series.Find({kind, site.site_id})) {
        site.finding = Judge(analyzer, process, kind, process.series.TimesOf(*points),
                             ValuesOf(*points, kind), BlockBytes(site.counters));
      }
      ApplyBudgetAndLimit(site, budgets, process.totals, process.limits);
    }
    SiteReport group = Summarise(process, indices, std::move(members));
    group.finding = finding;
    ApplyBudgetAndLimit(group, budgets, process.totals, process.limits);
    PromoteDriftingMember(group, sites);
    process.groups.push_back(std::move(group));
  }
}

}  // namespace dw::report
