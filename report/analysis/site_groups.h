// site_groups.h: the analysis stage that aggregates the stacks of one allocation site.
//
// A site on the wire is one call stack. Many stacks often share the place that allocates: a
// recursive parser reaches the same malloc line through 100k different chains of callers. The
// verdicts and the outputs work on groups, the way pprof aggregates by function: one group per
// (kind, headline frame's function + file + line), or, when that frame is not symbolised, per
// (kind, module + offset), or per raw address without a module. A site with no stack (the
// unattributed site, or a SiteDef never received) is a group of its own. Each group's series is
// the sum of its members' series aligned on time, and its verdict comes from that sum; the
// group keeps every member with its contribution, and the largest members are analysed on their
// own too so the report can name the stacks that grow.
//
// Thread-safety: stateless functions over the caller's data; not thread-safe on one process.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "report/analysis/drift_analysis.h"
#include "report/decode/census.h"
#include "report/model/run_result.h"
#include "report/store/process_series.h"

namespace dw::report {

// Members of each group analysed on their own by size (and as many more by steadiness).
inline constexpr size_t kAnalysedMembers = 5;

// The grouping key of a site: kind, then the headline frame's function, file and line when it
// has a function name; else its module and module offset; else its address; "site <id>" for a
// site without frames.
std::string GroupKey(const SiteReport& site);

// The sum of several sites' series of one kind (live bytes for heap, live count otherwise) on
// the process's time axis, from the earliest member's first point on. A member contributes 0
// before its first point and its latest value between its points. Sums saturate.
struct SummedSeries {
  std::vector<double> times;
  std::vector<int64_t> values;
};
SummedSeries SumSeries(const ProcessSeries& series, wire::Kind kind,
                       std::span<const uint32_t> site_ids);

// Builds `process.groups` from `process.sites` (sorted by kind and id, symbolised, with
// headlines) and `process.series`: sums, analyses each group with `analyzer` (and, for heap in
// sampled mode, ApplySamplingNoise with process.sample_mean_bytes), applies `budgets` and limit
// projections to each group, and analyses the largest kAnalysedMembers members of each group on
// their own into their SiteReport::finding. When the sum does not drift but one of those
// members does (its leak hidden by the others' churn), the group takes that member's finding
// (DriftFinding::judged_on_stack). Groups are ordered by kind, then by their first
// member's site id.
void BuildSiteGroups(ProcessReport& process, const DriftAnalyzer& analyzer,
                     const DriftBudgets& budgets);

// A drifting finding whose slope is within the kind's budget becomes steady with
// within_budget set; drifting and within-budget findings get their limit projection.
void ApplyBudgetAndLimit(SiteReport& site, const DriftBudgets& budgets, const CensusTotals& totals,
                         const std::optional<ProcessLimits>& limits);

}  // namespace dw::report
