#include "report/commands/proc_watch.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "report/analysis/watched_totals.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

ProcWatcher::Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<ProcWatcher::Clock::duration>(
      std::chrono::duration<double>(seconds));
}

// The label of a shim process (LabelProcess), from what /proc said when it was found.
ProcessLabel LabelWatched(const ProcIdentityInfo& identity) {
  HelloInfo hello;
  hello.identity.pid = static_cast<uint32_t>(identity.pid);
  hello.identity.ppid = identity.ppid;
  hello.identity.start_time_ticks = identity.start_ticks;
  hello.identity.clock_ticks_per_second = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  hello.identity.exe = identity.exe;
  return LabelProcess(hello, identity.names);
}

std::string DescribeTotal(const DriftingSite& total) {
  return fmt::format("{}: {}", total.where, FormatSlope(total.slope_per_hour, total.unit));
}

}  // namespace

ProcWatcher::ProcWatcher(const ProcWatchOptions& options, const DriftAnalyzer& analyzer,
                         const DriftBudgets& budgets, EndedProcesses& ended, LogLine log)
    : options_(options), analyzer_(analyzer), budgets_(budgets), ended_(ended), log_(log) {}

namespace {

absl::StatusOr<WatchedProc> OpenPid(pid_t pid, const ProcWatchOptions& options) {
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(pid, options.proc_root);
  if (!proc.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("--pid {}: {}", pid, std::string(proc.status().message())));
  }
  return proc;
}

}  // namespace

absl::Status CheckWatchedPids(const ProcWatchOptions& options) {
  for (pid_t pid : options.pids) {
    if (absl::StatusOr<WatchedProc> proc = OpenPid(pid, options); !proc.ok()) {
      return proc.status();
    }
  }
  return absl::OkStatus();
}

absl::Status ProcWatcher::Open() {
  for (pid_t pid : options_.pids) {
    absl::StatusOr<WatchedProc> proc = OpenPid(pid, options_);
    if (!proc.ok()) return proc.status();
    opened_.push_back(std::move(*proc));
  }
  return absl::OkStatus();
}

ProcWatcher::Clock::time_point ProcWatcher::Tick(Clock::time_point now) {
  if (!announced_) {
    announced_ = true;
    for (WatchedProc& proc : opened_) Watch(std::move(proc), "--pid");
    opened_.clear();
    next_sample_ = now + Seconds(options_.interval_s);
  }
  if (!options_.match_names.empty() && now >= next_scan_) {
    Scan();
    next_scan_ = now + Seconds(options_.rescan_s);
  }
  if (now >= next_sample_) {
    std::vector<pid_t> exec_pids;  // --pid processes that exec'd: watched on as new images
    for (auto it = watched_.begin(); it != watched_.end();) {
      if (SampleOne(it->second)) {
        ++it;
        continue;
      }
      End(it->second);
      if (it->second.proc.exec_seen() && it->second.reason == "--pid")
        exec_pids.push_back(it->first);
      it = watched_.erase(it);
    }
    // A --match process that exec'd is found again by the next scan if it still matches.
    for (pid_t pid : exec_pids) {
      if (absl::StatusOr<WatchedProc> proc = WatchedProc::Open(pid, options_.proc_root);
          proc.ok()) {
        Watch(std::move(*proc), "--pid");
      }
    }
    next_sample_ = std::max(next_sample_ + Seconds(options_.interval_s), now);
  }
  Clock::time_point next = next_sample_;
  if (!options_.match_names.empty()) next = std::min(next, next_scan_);
  return next;
}

void ProcWatcher::Watch(WatchedProc proc, std::string reason) {
  const pid_t pid = proc.identity().pid;
  Watched& watched = watched_.try_emplace(pid, std::move(proc)).first->second;
  const ProcIdentityInfo& identity = watched.proc.identity();
  watched.label = LabelWatched(identity);
  watched.reason = std::move(reason);
  watched.report.identity.pid = static_cast<uint32_t>(pid);
  watched.report.identity.ppid = identity.ppid;
  watched.report.identity.start_time_ticks = identity.start_ticks;
  watched.report.identity.exe = identity.exe;
  watched.report.interval_ms = static_cast<uint32_t>(options_.interval_s * 1000);
  log_(fmt::format("watch {} exe={} started={} uid={} by {} (from /proc: totals only)",
                   watched.label.Describe(), identity.exe.empty() ? "?" : identity.exe,
                   FormatUtc(watched.label.started_unix_s), static_cast<int64_t>(identity.uid),
                   watched.reason));
  // The first point at once, so a short-lived process has one and permissions are said now.
  if (!SampleOne(watched)) {
    End(watched);
    watched_.erase(pid);
  }
}

bool ProcWatcher::SampleOne(Watched& watched) {
  std::optional<ProcSample> sample = watched.proc.Sample();
  if (!sample.has_value()) return false;
  AppendProcSample(*sample, watched.report.series, watched.report.totals);
  watched.report.census_count = watched.report.series.censuses_seen();
  if (watched.proc.fds_denied() && !watched.said_denied) {
    watched.said_denied = true;
    log_(
        fmt::format("watch {}: {}/{}/fd is not readable (another user's process: needs root or "
                    "CAP_SYS_PTRACE); its RSS and threads are watched, its descriptors are not",
                    watched.label.Describe(), options_.proc_root, watched.label.pid));
  }
  return true;
}

std::pair<ProcessReport, Verdict> ProcWatcher::Judge(const Watched& watched) const {
  ProcessReport report = watched.report;
  const Verdict verdict = JudgeWatchedProcess(report, analyzer_, budgets_);
  return {std::move(report), verdict};
}

std::string ProcWatcher::DescribeVerdict(Verdict verdict,
                                         const std::vector<DriftingSite>& drifting) const {
  std::vector<std::string> totals;
  for (const DriftingSite& total : drifting) totals.push_back(DescribeTotal(total));
  return totals.empty()
             ? fmt::format("verdict {}", VerdictName(verdict))
             : fmt::format("verdict {} ({})", VerdictName(verdict), absl::StrJoin(totals, "; "));
}

void ProcWatcher::End(Watched& watched) {
  auto [report, verdict] = Judge(watched);
  ProcessSummary summary;
  summary.label = watched.label;
  summary.verdict = verdict;
  summary.census_count = report.census_count;
  summary.ended_unix_s = NowUnixSeconds();
  summary.drifting = DriftingTotals(report);
  if (summary.drifting.size() > ProcessSummary::kSummarySites) {
    summary.drifting.resize(ProcessSummary::kSummarySites);
  }
  if (metrics_ != nullptr) {
    metrics_->ForgetWatched(watched.label.pid);
    metrics_->CountEnded(verdict);
    metrics_changed_ = true;
  }
  log_(fmt::format("end {} after {}, {} samples: {}{}", watched.label.Describe(),
                   FormatLifetime(watched.label.started_unix_s, NowUnixSeconds()),
                   summary.census_count, DescribeVerdict(verdict, summary.drifting),
                   watched.proc.exec_seen() ? " (it exec'd another program)" : ""));
  ended_.Add(std::move(summary));
}

void ProcWatcher::Check() {
  for (auto& [pid, watched] : watched_) {
    const size_t samples = watched.report.series.censuses_seen();
    if (samples == watched.samples_analysed) continue;
    watched.samples_analysed = samples;
    const auto [report, verdict] = Judge(watched);
    if (metrics_ != nullptr) {
      metrics_->UpdateWatched(watched.label.pid, watched.label, report, verdict);
      metrics_changed_ = true;
    }
    const DriftChanges changes = watched.drifting.Update(DriftingTotals(report));
    for (const DriftingSite& total : changes.started) {
      log_(fmt::format("drift-start {} {}", watched.label.Describe(), DescribeTotal(total)));
    }
    for (const DriftingSite& total : changes.stopped) {
      log_(fmt::format("drift-stop {} {} (was {})", watched.label.Describe(), total.where,
                       FormatSlope(total.slope_per_hour, total.unit)));
    }
  }
}

void ProcWatcher::Scan() {
  const std::vector<pid_t> found =
      FindMatchingProcesses(options_.match_names, getpid(), options_.proc_root);
  std::set<std::pair<pid_t, uint64_t>> still_skipped;
  for (pid_t pid : found) {
    if (watched_.contains(pid)) continue;  // a reused pid is found once its old lifetime ended
    absl::StatusOr<WatchedProc> proc = WatchedProc::Open(pid, options_.proc_root);
    if (!proc.ok()) continue;  // gone already, a zombie or a kernel thread
    const ProcIdentityInfo& identity = proc->identity();
    const std::pair key(pid, identity.start_ticks);
    if (skipped_.contains(key) ||
        (under_shim_ && under_shim_(static_cast<uint32_t>(pid), identity.start_ticks)) ||
        MapsShim(pid, options_.proc_root)) {
      still_skipped.insert(key);  // the shim reports it: counted once
      continue;
    }
    std::string reason = "--match";
    for (const std::string& name : options_.match_names) {
      if (MatchesName(name, identity.names, identity.exe)) {
        reason = absl::StrCat("--match ", name);
        break;
      }
    }
    Watch(std::move(*proc), std::move(reason));
  }
  skipped_ = std::move(still_skipped);
}

void ProcWatcher::HandOver(uint32_t pid, uint64_t start_ticks) {
  auto it = watched_.find(static_cast<pid_t>(pid));
  if (it == watched_.end() || it->second.proc.identity().start_ticks != start_ticks) return;
  log_(fmt::format("unwatch {}: it runs under the shim, its connection reports it from now on",
                   it->second.label.Describe()));
  if (metrics_ != nullptr) {
    metrics_->ForgetWatched(pid);
    metrics_changed_ = true;
  }
  watched_.erase(it);
}

void ProcWatcher::Stop() {
  for (auto& [pid, watched] : watched_) {
    auto [report, verdict] = Judge(watched);
    log_(fmt::format("running {} at exit, after {}, {} samples: {}", watched.label.Describe(),
                     FormatLifetime(watched.label.started_unix_s, NowUnixSeconds()),
                     report.census_count, DescribeVerdict(verdict, DriftingTotals(report))));
  }
}

}  // namespace dw::report
