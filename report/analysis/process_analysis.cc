#include "report/analysis/process_analysis.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "report/analysis/site_groups.h"
#include "report/symbols/frames.h"

namespace dw::report {

std::optional<LimitProjection> ProjectToLimit(wire::Kind kind, const CensusTotals& totals,
                                              const std::optional<ProcessLimits>& limits,
                                              double slope_per_hour) {
  if (!limits.has_value()) return std::nullopt;
  struct Candidate {
    uint64_t value;
    const char* name;
  };
  std::vector<Candidate> candidates;
  uint64_t current = 0;
  switch (kind) {
    case wire::Kind::kFds:
      candidates = {{limits->nofile_soft, "RLIMIT_NOFILE"}};
      current = totals.fd_count;
      break;
    case wire::Kind::kThreads:
      // All three count more than this process's threads; the process alone reaches them last,
      // so this is the latest the process can fail, not the earliest.
      candidates = {{limits->nproc_soft, "RLIMIT_NPROC"},
                    {limits->pids_max, "pids.max"},
                    {limits->threads_max, "threads-max"}};
      current = totals.thread_count;
      break;
    case wire::Kind::kHeap:
      // The cgroup limit is what the OOM killer enforces; without one, the machine's memory.
      candidates = {{limits->memory_limit_bytes != 0 ? limits->memory_limit_bytes
                                                     : limits->memory_total_bytes,
                     limits->memory_limit_bytes != 0 ? "memory.max" : "MemTotal"}};
      current = totals.rss_bytes;
      break;
    case wire::Kind::kTimers:
      return std::nullopt;  // RLIMIT_SIGPENDING and kernel memory are not sent by the shim
  }
  const Candidate* tightest = nullptr;
  for (const Candidate& candidate : candidates) {
    if (candidate.value == 0) continue;
    if (tightest == nullptr || candidate.value < tightest->value) tightest = &candidate;
  }
  if (tightest == nullptr) return std::nullopt;
  LimitProjection projection;
  projection.name = tightest->name;
  projection.value = tightest->value;
  projection.current = current;
  if (slope_per_hour > 0 && tightest->value > current) {
    const double seconds = static_cast<double>(tightest->value - current) / slope_per_hour * 3600;
    if (std::isfinite(seconds)) projection.time_to_limit_s = seconds;
  }
  return projection;
}

namespace {

std::vector<Frame> SymbolizeStack(Symbolizer& symbolizer, const SiteStack& stack) {
  return symbolizer.Symbolize(stack.return_addresses, stack.modules.get(), stack.module_generation);
}

// The frames of `stack` as grouping needs them: the runtime's (libc, the loader, ...) by name
// only, since the headline is never one of them and reading their DWARF cost 20-40 ms a run for
// glibc's compressed debug file; the others in full. `whole`: every frame; otherwise from the
// innermost up to the headline (HeadlineFrame gives the same frame as on the whole stack), as
// most stacks of a large process are only grouped, never printed. A stack whose headline is a
// runtime frame (no frame outside the runtime) is symbolised in full: the group key has its line.
std::vector<Frame> SymbolizeForGrouping(Symbolizer& symbolizer, const SiteStack& stack,
                                        bool whole) {
  std::vector<Frame> frames;
  for (uint64_t address : stack.return_addresses) {
    std::vector<Frame> expanded = symbolizer.SymbolizeWithInlines(
        address, stack.modules.get(), stack.module_generation, FrameDetail::kRuntimeNamesOnly);
    for (Frame& frame : expanded) {
      const bool settled = IsHeadlineCandidate(frame);
      frames.push_back(std::move(frame));
      if (settled && !whole) return frames;
    }
  }
  if (!frames.empty() && frames[HeadlineFrame(frames)].names_only) {
    return SymbolizeStack(symbolizer, stack);
  }
  return frames;
}

// Whether an output prints the group's stack (report_output.cc: findings are the groups that
// are not steady, and growth within budget is listed too).
bool IsPrinted(const SiteReport& group) {
  return group.finding.status != DriftStatus::kSteady || group.finding.within_budget;
}

// The whole stacks, all frames in full, of what the outputs print: each printed group's own
// stack and its analysed members. The others keep what grouping needed (SymbolizeForGrouping).
void SymbolizeReportedStacks(ProcessReport& process,
                             const absl::flat_hash_map<uint32_t, SiteStack>& stacks,
                             Symbolizer& symbolizer) {
  const auto fill = [&](SiteReport& site) {
    if (site.frames.empty()) return;
    if (auto it = stacks.find(site.site_id); it != stacks.end()) {
      site.frames = SymbolizeStack(symbolizer, it->second);
      // The same frame, further down when runtime frames before it had inlined functions.
      site.headline = HeadlineFrame(site.frames);
    }
  };
  for (SiteReport& group : process.groups) {
    if (!IsPrinted(group)) continue;
    fill(group);
    // The group's own stack is also a site (FindSitesByFunction searches the sites).
    if (!group.members.empty() && group.members.front().site_index < process.sites.size()) {
      fill(process.sites[group.members.front().site_index]);
    }
    if (group.members.size() < 2) continue;
    for (const GroupMember& member : group.members) {
      if (member.analysed && member.site_index < process.sites.size()) {
        fill(process.sites[member.site_index]);
      }
    }
  }
}

// The process's identity and what its connection carried, before any analysis.
ProcessReport NewProcessReport(ConnectionRecord& record) {
  ProcessReport process;
  process.identity = record.hello->identity;
  process.interval_ms = record.hello->interval_ms;
  process.mode = record.hello->mode;
  process.sample_mean_bytes = record.hello->sample_mean_bytes;
  process.census_count = record.census_count;
  process.sequence_gaps = record.sequence_gaps;
  process.saw_final = record.saw_final;
  process.stream_error = record.stream_error;
  process.series = std::move(record.series);
  return process;
}

// One site of the latest census, unsymbolised; adds its live amount to the process's sums.
SiteReport NewSiteReport(wire::Kind kind, uint32_t site_id, const SiteCounters& counters,
                         const Census& latest, ProcessReport& process) {
  SiteReport site;
  site.kind = kind;
  site.site_id = site_id;
  site.counters = counters;
  site.live = counters.Live();
  site.live_bytes = counters.LiveBytes();
  site.unit = site.kind == wire::Kind::kHeap ? "bytes" : "count";
  site.detail = counters.detail;
  switch (site.kind) {
    case wire::Kind::kHeap:
      AddSaturating(process.heap_live_bytes, site.live_bytes);
      break;
    case wire::Kind::kFds:
      site.fd_types = FdTypeNames(site.detail);
      break;
    case wire::Kind::kTimers:
      site.timer_notify = TimerNotifyNames(site.detail);
      AddSaturating(process.timers_live, site.live);
      break;
    case wire::Kind::kThreads:
      if (auto it = latest.thread_states.find(site_id); it != latest.thread_states.end()) {
        site.thread_state = it->second;
      }
      break;
  }
  return site;
}

// Every site of the latest census, symbolised for grouping (SymbolizeForGrouping) with its
// headline frame, ordered by kind and id: whole stacks when there are at most kFullStacksUpTo,
// else up to their headline.
void AddSites(ProcessReport& process, const ConnectionRecord& record, Symbolizer& symbolizer) {
  if (!record.latest.has_value()) return;
  const Census& latest = *record.latest;
  process.totals = latest.totals;
  process.limits = latest.limits;
  size_t stack_count = 0;
  for (const auto& counters : latest.counters) stack_count += counters.size();
  const bool full_stacks = stack_count <= kFullStacksUpTo;
  // Sized once: growing by doubling held the old and the new array (~370 B a site) at once.
  process.sites.reserve(stack_count);
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    for (const auto& [site_id, counters] : latest.counters[kind]) {
      SiteReport site =
          NewSiteReport(static_cast<wire::Kind>(kind), site_id, counters, latest, process);
      if (auto it = record.sites.find(site_id); it != record.sites.end()) {
        site.frames = SymbolizeForGrouping(symbolizer, it->second, full_stacks);
        site.headline = HeadlineFrame(site.frames);
      }
      process.sites.push_back(std::move(site));
    }
  }
  // Stable order for reports and tests: by kind, then site id.
  std::sort(process.sites.begin(), process.sites.end(),
            [](const SiteReport& a, const SiteReport& b) {
              return std::pair(a.kind, a.site_id) < std::pair(b.kind, b.site_id);
            });
}

// RSS against the tracked heap: RSS drifting while the heap sites do not (or grow at a fraction
// of its rate) is memory the shim cannot attribute: fragmentation, or mappings, thread stacks and
// allocators outside malloc.
void ReconcileRss(ProcessReport& process, const DriftFinding& rss) {
  const DriftFinding& heap = process.heap_total_finding;
  // Judged on the heap's slope, not its status: a heap growing as fast as RSS explains it even
  // when its own trend is not yet significant.
  constexpr double kUnexplainedShare = 0.25;  // heap growth below this share of RSS growth
  if (rss.status != DriftStatus::kDrifting ||
      heap.slope_per_hour >= kUnexplainedShare * rss.slope_per_hour) {
    return;
  }
  RssFinding finding;
  finding.status = rss.status;
  finding.slope_per_hour = rss.slope_per_hour;
  finding.heap_slope_per_hour = heap.slope_per_hour;
  finding.confidence = rss.confidence;
  finding.limit =
      ProjectToLimit(wire::Kind::kHeap, process.totals, process.limits, rss.slope_per_hour);
  process.rss_finding = finding;
}

ProcessReport BuildProcessReport(ConnectionRecord& record, const DriftAnalyzer& analyzer,
                                 Symbolizer& symbolizer, const DriftBudgets& budgets) {
  ProcessReport process = NewProcessReport(record);
  const ProcessSeries& series = process.series;
  process.heap_total_finding = analyzer.Analyze(series.times(), series.heap_live_bytes());
  AddSites(process, record, symbolizer);
  BuildSiteGroups(process, analyzer, budgets);
  SymbolizeReportedStacks(process, record.sites, symbolizer);
  const DriftFinding rss = analyzer.Analyze(series.times(), series.rss_bytes());
  ReconcileRss(process, rss);
  JudgeProcessTotals(process, rss, analyzer);
  return process;
}

}  // namespace

void JudgeProcessTotals(ProcessReport& process, const DriftFinding& rss,
                        const DriftAnalyzer& analyzer) {
  const ProcessSeries& series = process.series;
  const std::pair<const std::vector<int64_t>*, TotalTrend> totals[] = {
      {&series.rss_bytes(), {.name = "rss", .kind = wire::Kind::kHeap}},
      {&series.fds(), {.name = "fds", .kind = wire::Kind::kFds}},
      {&series.threads(), {.name = "threads", .kind = wire::Kind::kThreads}},
  };
  for (const auto& [values, trend] : totals) {
    TotalTrend total = trend;
    total.finding =
        trend.name == std::string_view("rss") ? rss : analyzer.Analyze(series.times(), *values);
    if (total.finding.status != DriftStatus::kDrifting) continue;
    total.limit =
        ProjectToLimit(total.kind, process.totals, process.limits, total.finding.slope_per_hour);
    process.total_trends.push_back(total);
  }
}

std::vector<ProcessReport> BuildProcessReports(std::vector<ConnectionRecord> records,
                                               const DriftAnalyzer& analyzer,
                                               Symbolizer& symbolizer,
                                               const DriftBudgets& budgets) {
  std::vector<ProcessReport> processes;
  for (ConnectionRecord& record : records) {
    // A peer that never said Hello is not a driftwatch process (or failed at once): nothing to
    // report about it.
    if (!record.hello.has_value()) continue;
    processes.push_back(BuildProcessReport(record, analyzer, symbolizer, budgets));
  }
  return processes;
}

Verdict ComputeVerdict(const std::vector<ProcessReport>& processes) {
  bool judged = false, unresolved = false;
  for (const ProcessReport& process : processes) {
    for (const SiteReport& group : process.groups) {
      if (group.finding.status == DriftStatus::kDrifting) return Verdict::kDrift;
      unresolved |= group.finding.status == DriftStatus::kInconclusive;
    }
    judged |= process.heap_total_finding.enough_samples;
  }
  return judged && !unresolved ? Verdict::kSteady : Verdict::kInconclusive;
}

void AnalyzeCollected(std::vector<ConnectionRecord> records, const AnalysisOptions& options,
                      RunResult& result) {
  const pid_t child = result.child_pid;
  ExitInfo& exit = result.child_exit;
  result.child_failed = !result.ended_by_us && (exit.signaled || exit.code != 0);

  RobustDriftAnalyzer default_analyzer({.warmup_s = options.warmup_s});
  Symbolizer symbolizer({.debug_dirs = options.debug_dirs});
  result.processes = BuildProcessReports(
      std::move(records), options.analyzer != nullptr ? *options.analyzer : default_analyzer,
      symbolizer, options.budgets);
  // The direct child's exit status belongs to its last image (an exec replaces the earlier ones).
  for (auto it = result.processes.rbegin(); it != result.processes.rend(); ++it) {
    if (it->identity.pid == static_cast<uint32_t>(child)) {
      it->exit = result.child_exit;
      break;
    }
  }
  result.verdict = ComputeVerdict(result.processes);
  // A process of the run that was never heard from may be the one that drifts.
  if (result.verdict == Verdict::kSteady && !result.unheard.empty()) {
    result.verdict = Verdict::kInconclusive;
  }
}

}  // namespace dw::report
