// proc_watch.h: `driftwatch collect --pid PID / --match NAME`: processes the shim cannot enter
// (static binaries, Go programs, set-uid programs, services that cannot be restarted), watched
// from outside through /proc (transport/proc_sampler.h) next to the shim's connections.
//
// Each watched process lifetime (pid + start time) is a series like a shim process's, labelled
// the same way (command name, pid, exe, start time), and judged on its totals only
// (analysis/watched_totals.h: RSS, threads, descriptors by class) with the analysis of the shim's
// process totals. Its log lines mirror a connection's: "watch" when it is found, "drift-start" /
// "drift-stop" on a total ("total fds/sockets"), "end" with its verdict when it exits, and its
// summary joins the ended history.
//
// Known pids are sampled every `interval_s`; /proc is scanned for new --match processes only
// every `rescan_s`. A process under the shim is reported once: --match skips processes that map
// libdriftwatch.so or have a live connection to this collector, and a watched process whose
// connection arrives later is handed over to it (an "unwatch" line, no end line).
//
// Thread-safety: one thread (the collector loop). Allocation: yes (collector code). Never runs
// inside a hook.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "report/analysis/drift_analysis.h"
#include "report/analysis/live_processes.h"
#include "report/commands/metrics_exporter.h"
#include "report/model/run_result.h"
#include "report/transport/proc_sampler.h"

namespace dw::report {

struct ProcWatchOptions {
  std::vector<pid_t> pids;               // --pid, each one lifetime
  std::vector<std::string> match_names;  // --match (MatchesName in transport/proc_sampler.h)
  double interval_s = 1.0;               // --watch-interval: seconds between samples
  double rescan_s = 3.0;                 // seconds between scans of /proc for --match
  std::string proc_root = "/proc";

  bool empty() const { return pids.empty() && match_names.empty(); }
};

// InvalidArgument naming the first --pid that is not a live process (a set-up error, exit 2).
absl::Status CheckWatchedPids(const ProcWatchOptions& options);

class ProcWatcher {
 public:
  using Clock = std::chrono::steady_clock;
  using LogLine = std::function<void(const std::string& line)>;
  // Whether pid + start time is a process with a live shim connection to this collector.
  using UnderShim = std::function<bool(uint32_t pid, uint64_t start_ticks)>;

  ProcWatcher(const ProcWatchOptions& options, const DriftAnalyzer& analyzer,
              const DriftBudgets& budgets, EndedProcesses& ended, LogLine log);

  // Opens every --pid. InvalidArgument naming the pid when one is not a live process.
  absl::Status Open();
  void set_under_shim(UnderShim under_shim) { under_shim_ = std::move(under_shim); }
  // --metrics: each analysis and end goes to `metrics` too (by pid: UpdateWatched,
  // ForgetWatched, CountEnded); null for none.
  void set_metrics(MetricsExporter* metrics) { metrics_ = metrics; }
  // Whether the metrics changed since the last call (the loop publishes them then).
  bool TakeMetricsChanged() { return std::exchange(metrics_changed_, false); }

  // Announces what Open found (once), samples the processes due, ends those that exited and
  // scans for new --match processes when due. Returns when it wants to be called next.
  Clock::time_point Tick(Clock::time_point now);
  // Analyses each process sampled since its last analysis: drift-start and drift-stop lines.
  void Check();
  // pid + start time now reports through the shim: stop watching it (an "unwatch" line).
  void HandOver(uint32_t pid, uint64_t start_ticks);
  // At SIGTERM: a "running" line per watched process with its verdict.
  void Stop();

  size_t watched() const { return watched_.size(); }
  // Every --pid ended and there is nothing to match: nothing left to watch.
  bool done() const { return options_.match_names.empty() && watched_.empty() && announced_; }

 private:
  struct Watched {
    explicit Watched(WatchedProc watched_proc) : proc(std::move(watched_proc)) {}
    WatchedProc proc;
    ProcessLabel label;
    std::string reason;    // "--pid" or "--match NAME"
    ProcessReport report;  // identity, totals, series: what the analysis reads
    DriftTracker drifting;
    size_t samples_analysed = 0;
    bool said_denied = false;
  };

  void Watch(WatchedProc proc, std::string reason);
  // One sample; false when the process is gone.
  bool SampleOne(Watched& watched);
  void End(Watched& watched);
  void Scan();
  // The analysis of what `watched` sampled so far, and its verdict.
  std::pair<ProcessReport, Verdict> Judge(const Watched& watched) const;
  std::string DescribeVerdict(Verdict verdict, const std::vector<DriftingSite>& drifting) const;

  const ProcWatchOptions& options_;
  const DriftAnalyzer& analyzer_;
  const DriftBudgets& budgets_;
  EndedProcesses& ended_;
  LogLine log_;
  UnderShim under_shim_;
  MetricsExporter* metrics_ = nullptr;
  bool metrics_changed_ = false;
  std::vector<WatchedProc> opened_;  // by Open(), announced by the first Tick()
  bool announced_ = false;
  std::map<pid_t, Watched> watched_;
  // --match processes skipped because they run under the shim, by pid and start time.
  std::set<std::pair<pid_t, uint64_t>> skipped_;
  Clock::time_point next_sample_{}, next_scan_{};
};

}  // namespace dw::report
