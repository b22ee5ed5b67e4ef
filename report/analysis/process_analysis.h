// process_analysis.h: the analysis policy from what the collector received to the verdict.
//
// For each connection (one process image): symbolises its sites and finds their headline
// frames, groups the stacks by allocation site and judges each group (site_groups.h,
// drift_analysis.h), applies leak budgets and projects growth onto the process's limits,
// reconciles RSS with the tracked heap, judges the process totals, and then the run as a whole.
// `driftwatch run` (after the command ends) and `driftwatch report` (replaying a recording) both
// end here, through AnalyzeCollected, so they reach the same verdict on the same bytes.
//
// Thread-safety: stateless functions over the caller's data; the Symbolizer passed in is used
// by one thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "preload/wire_format.h"
#include "report/analysis/drift_analysis.h"
#include "report/decode/census.h"
#include "report/model/run_result.h"
#include "report/symbols/symbolizer.h"
#include "report/transport/collector.h"

namespace dw::report {

// How to judge what was collected: the analysis settings of `run` and `report`.
struct AnalysisOptions {
  // null: RobustDriftAnalyzer with `warmup_s`; when set, `warmup_s` is ignored.
  const DriftAnalyzer* analyzer = nullptr;
  std::optional<double> warmup_s;  // --warmup: seconds skipped before fitting; unset: from data
  DriftBudgets budgets;            // --budget: accepted growth per kind
  // --debug-dir: roots searched for <dir>/.build-id/xx/yyyy.debug before /usr/lib/debug.
  std::vector<std::string> debug_dirs;
};

// Up to this many stacks in a process, every site keeps its whole symbolised stack (SiteReport::
// frames), so FindSitesByFunction sees every caller of every stack. Frames in the runtime
// (IsRuntimeFrame: libc, the loader, libstdc++...) carry only their function name
// (Frame::names_only: no line, no inlined functions) except in the stacks the outputs print:
// grouping never needs their DWARF, and glibc's costs 20-40 ms a run to decompress.
inline constexpr size_t kFullStacksUpTo = 4096;

// The tightest limit of `limits` for `kind`, and when the process reaches it growing at
// `slope_per_hour`. Unset for timers (their limits, RLIMIT_SIGPENDING and kernel memory, are not
// sent) and when no limit is known. RLIMIT_AS is not used: it bounds virtual size, not RSS.
std::optional<LimitProjection> ProjectToLimit(wire::Kind kind, const CensusTotals& totals,
                                              const std::optional<ProcessLimits>& limits,
                                              double slope_per_hour);

// Turns what the collector received into reports: symbolised sites with headline frames,
// findings and totals (AnalyzeCollected's core; tests call it on hand-made connections).
// Drifting sites whose slope is within `budgets` for their kind become steady, with
// finding.within_budget set.
std::vector<ProcessReport> BuildProcessReports(std::vector<ConnectionRecord> records,
                                               const DriftAnalyzer& analyzer,
                                               Symbolizer& symbolizer,
                                               const DriftBudgets& budgets = {});

// What a run does once collection ended, shared with the replay of a recording (`driftwatch
// report`) so both take exactly the same steps: decides child_failed from child_exit and
// ended_by_us, builds the process reports with `options`, gives the direct child's (child_pid)
// last image its exit status, and computes the verdict.
void AnalyzeCollected(std::vector<ConnectionRecord> records, const AnalysisOptions& options,
                      RunResult& result);

// The process totals that drift (RSS judged as `rss`, all fds, all threads of process.series)
// into process.total_trends, with their limits. Also the analysis of processes watched from
// outside the shim (analysis/watched_totals.h).
void JudgeProcessTotals(ProcessReport& process, const DriftFinding& rss,
                        const DriftAnalyzer& analyzer);

// drift if any group drifts; inconclusive if a sampled heap group rose by too few samples to
// judge, or no process sent enough censuses to judge.
Verdict ComputeVerdict(const std::vector<ProcessReport>& processes);

}  // namespace dw::report
