// watched_totals.h: the analysis of a process watched from outside the shim (`collect --pid` /
// `--match`, transport/proc_sampler.h): its samples go into a ProcessSeries like a shim's
// censuses, and it is judged by the analysis of the shim's process totals (JudgeProcessTotals:
// RSS, all fds, all threads, with the same analyzer and limit projections), plus one series per
// descriptor class, so that a drift can say "fds/sockets" where the shim would name a call site.
// The result is a ProcessReport without sites: identity, totals, series and total_trends.
//
// In the series, each descriptor class is a site of kind fds with id FdClassSiteId(class): only
// the store sees those, never ProcessReport::sites (there is no call site to name).
//
// Thread-safety: stateless functions over the caller's data. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "report/analysis/drift_analysis.h"
#include "report/analysis/live_processes.h"
#include "report/model/run_result.h"
#include "report/store/process_series.h"
#include "report/transport/proc_sampler.h"

namespace dw::report {

constexpr uint32_t FdClassSiteId(FdClass fd_class) { return static_cast<uint32_t>(fd_class) + 1; }

// Appends one sample to `series`; also sets `totals` to it (fd_count 0 when fds are unreadable).
void AppendProcSample(const ProcSample& sample, ProcessSeries& series, CensusTotals& totals);

// Fills process.total_trends from process.series: RSS, threads and each descriptor class that
// drift ("rss", "threads", "fds/sockets"...), and all fds ("fds") only when no class of them
// does (spread over several classes). A trend whose slope is within `budgets` for its kind (heap's
// for RSS) is left out. Returns the process's verdict: drift when a trend is left, steady when
// the series was long enough to judge, inconclusive otherwise.
Verdict JudgeWatchedProcess(ProcessReport& process, const DriftAnalyzer& analyzer,
                            const DriftBudgets& budgets = {});

// The drifting totals of a watched process as DriftTracker and the log see them: kind, where
// "total <name>" (e.g. "total fds/sockets"), slope and unit.
std::vector<DriftingSite> DriftingTotals(const ProcessReport& process);

}  // namespace dw::report
