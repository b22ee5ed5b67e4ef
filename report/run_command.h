// run_command.h: `driftwatch run` as a library: runs a command under the shim and collects.
//
// RunUnderShim() forks and execs the command with LD_PRELOAD=<shim>[:<previous LD_PRELOAD>],
// DRIFTWATCH_SOCKET and DRIFTWATCH_INTERVAL_MS, collects every census of every process that
// connects (the command, its children, each exec image), stops the command after the optional
// duration (SIGTERM, then SIGKILL after a grace period), waits briefly for final censuses, then
// symbolises the sites and runs the drift analysis. End-to-end tests call it directly.
//
// Before starting anything it refuses a command the shim cannot load into (launch_check.h). While
// it runs, the calling process is a child subreaper, so that the run's daemonised processes stay
// its descendants; census connections from another uid are admitted only for those descendants
// (docs/SECURITY.md), and processes of the run that never sent a census are listed.
//
// Thread-safety: RunUnderShim() blocks SIGINT and SIGTERM in the calling thread while it runs (to
// forward them through a signalfd), forks, and reaps every child of the calling process
// (waitpid(-1)); call it from one thread at a time, in a process without other threads that
// expect those signals or other children of their own. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "report/census.h"
#include "report/collector.h"
#include "report/drift_analysis.h"
#include "report/process_series.h"
#include "report/run_watch.h"
#include "report/site_groups.h"
#include "report/symbolizer.h"

namespace dw::report {

// Sampled mode's default mean bytes between heap samples, as in tcmalloc and Go.
inline constexpr uint32_t kDefaultSampleBytes = 512 * 1024;

struct RunOptions {
  std::vector<std::string> command;  // argv; command[0] is looked up in $PATH
  std::optional<double> duration_s;  // unset: until the command exits
  uint32_t interval_ms = 1000;       // passed as DRIFTWATCH_INTERVAL_MS
  // --mode sampled: mean bytes between heap samples (DRIFTWATCH_MODE/DRIFTWATCH_SAMPLE_BYTES);
  // 0 is exact mode, every heap block recorded.
  uint32_t sample_mean_bytes = 0;
  std::string shim_path;        // empty: LocateShim()
  double kill_grace_s = 5.0;    // SIGTERM -> SIGKILL
  double drain_grace_s = 2.0;   // after the command exits, wait this long for EOFs
  bool forward_signals = true;  // forward SIGINT/SIGTERM received by us to the command
  // null: RobustDriftAnalyzer with `warmup_s`; when set, `warmup_s` is ignored.
  const DriftAnalyzer* analyzer = nullptr;
  std::optional<double> warmup_s;  // --warmup: seconds skipped before fitting; unset: from data
  DriftBudgets budgets;            // --budget: accepted growth per kind
  // --debug-dir: roots searched for <dir>/.build-id/xx/yyyy.debug before /usr/lib/debug.
  std::vector<std::string> debug_dirs;
  // Sees every connection's raw bytes (driftwatch run --record); not owned, null for none.
  Collector::Tap* tap = nullptr;
};

struct ExitInfo {
  bool signaled = false;
  int code = 0;    // exit code when !signaled
  int signal = 0;  // terminating signal when signaled
};

// When a resource runs into the process's tightest known limit at a given rate.
struct LimitProjection {
  // "RLIMIT_NOFILE" (fds); "RLIMIT_NPROC", "pids.max" or "threads-max" (threads); "memory.max"
  // (the cgroup's memory limit) or "MemTotal" (heap and RSS, against the RSS).
  const char* name = "";
  uint64_t value = 0;    // the limit, in the kind's unit (bytes for memory)
  uint64_t current = 0;  // what the process uses now: its fds, threads or RSS
  // (value - current) / rate; unset when the rate is not positive or the limit is already
  // reached.
  std::optional<double> time_to_limit_s;
};

// The tightest limit of `limits` for `kind`, and when the process reaches it growing at
// `slope_per_hour`. Unset for timers (their limits, RLIMIT_SIGPENDING and kernel memory, are not
// sent) and when no limit is known. RLIMIT_AS is not used: it bounds virtual size, not RSS.
std::optional<LimitProjection> ProjectToLimit(wire::Kind kind, const CensusTotals& totals,
                                              const std::optional<ProcessLimits>& limits,
                                              double slope_per_hour);

// One site of the latest census of a process.
struct SiteReport {
  wire::Kind kind = wire::Kind::kHeap;
  uint32_t site_id = 0;  // kUnattributedSite (0) for resources without a site
  SiteCounters counters;
  int64_t live = 0;
  int64_t live_bytes = 0;
  // Innermost first; empty for the unattributed site. In a process with more than
  // kFullStacksUpTo stacks, only what the outputs print has its whole stack (each group and its
  // analysed members); the other stacks stop at their headline frame, which is all grouping
  // needs (a whole stack symbolised costs ~5 KB: 150k of them were 1.3 GB).
  std::vector<Frame> frames;
  size_t headline = 0;  // index into frames of the user's frame: see HeadlineFrame()
  DriftFinding finding;
  const char* unit = "bytes";  // of finding.slope_per_hour: "bytes" for heap, else "count"
  // Raw kind-specific bits (counters.detail): wire::FdType bits for fds, wire::TimerNotify bits
  // for timers, 0 otherwise.
  uint32_t detail = 0;
  std::vector<std::string> fd_types;      // fds: FdTypeNames(detail), e.g. {"socket/inet"}
  std::vector<std::string> timer_notify;  // timers: TimerNotifyNames(detail), e.g. {"thread"}
  // threads: what the site's live threads were doing at the latest census; absent when that
  // census carried no ThreadStates entry for the site (no live thread, or an older shim).
  std::optional<ThreadSiteState> thread_state;
  // For drifting sites (and growth within budget): the process's tightest limit of this kind.
  std::optional<LimitProjection> limit;
  std::optional<double> budget_per_hour;  // the --budget of this kind, when one was given
  // For a group (ProcessReport::groups, site_groups.h): every stack of the allocation site,
  // largest contribution first; the fields above are the group's sums and the verdict of its
  // summed series, `frames` those of the first member. Empty for a plain site.
  std::vector<GroupMember> members;
};

// RSS judged against the tracked heap: memory the process gains outside the heap sites.
struct RssFinding {
  DriftStatus status = DriftStatus::kSteady;  // of the RSS series
  double slope_per_hour = 0;                  // RSS growth, bytes per hour
  double heap_slope_per_hour = 0;             // tracked heap growth over the same censuses
  double confidence = 0;
  std::optional<LimitProjection> limit;
};

// A process total (RSS, all fds, all threads) that drifts, and when it reaches its limit.
struct TotalTrend {
  const char* name = "";                // "rss", "fds", "threads"
  wire::Kind kind = wire::Kind::kHeap;  // whose limits apply: kHeap for RSS
  DriftFinding finding = {};            // status is kDrifting
  std::optional<LimitProjection> limit = {};
};

// One process image (one connection).
struct ProcessReport {
  ProcessIdentity identity;
  uint32_t interval_ms = 0;
  uint16_t mode = wire::kModeExact;
  uint32_t sample_mean_bytes = 0;  // sampled mode: heap figures are estimates at this mean
  std::optional<ExitInfo> exit;    // known for the direct child's last image only
  size_t census_count = 0;
  uint64_t sequence_gaps = 0;
  bool saw_final = false;
  std::string stream_error;             // corrupt/truncated stream; data before it is kept
  CensusTotals totals;                  // of the latest census
  int64_t heap_live_bytes = 0;          // sum of live bytes over heap sites in the latest census
  int64_t timers_live = 0;              // sum of live counts over timer sites in the latest census
  std::optional<ProcessLimits> limits;  // the latest Limits received; absent if none was sent
  DriftFinding heap_total_finding;      // the analysis of heap_live_bytes over time
  // RSS that drifts while the tracked heap does not (or grows far faster than it); absent
  // otherwise.
  std::optional<RssFinding> rss_finding;
  // The process totals that drift, whatever their sites do (a total also counts what no site
  // holds: inherited fds, threads and memory made where no hook sees them).
  std::vector<TotalTrend> total_trends;
  std::vector<SiteReport> sites;  // every site of the latest census, all kinds
  // The sites grouped by allocation site (BuildSiteGroups): what verdicts and reports use. A
  // site's own finding is set only when it was analysed as one of its group's largest members.
  std::vector<SiteReport> groups;
  ProcessSeries series;

  const SiteReport* FindSite(wire::Kind kind, uint32_t site_id) const;
};

enum class Verdict { kSteady, kDrift, kInconclusive };
const char* VerdictName(Verdict verdict);  // "steady", "drift", "inconclusive"

struct RunResult {
  std::vector<std::string> command;
  std::string shim_path;
  uint32_t interval_ms = 0;
  double duration_s = 0;  // from fork to the command's exit (or the end of collection)
  pid_t child_pid = 0;
  ExitInfo child_exit;
  bool ended_by_us = false;   // we sent SIGTERM/SIGKILL at the deadline or forwarded a signal
  bool child_failed = false;  // non-zero exit or crash not caused by us
  std::vector<ProcessReport> processes;  // in connection order
  Verdict verdict = Verdict::kInconclusive;
  // Said before trusting the result: e.g. a Go or sanitizer-built command whose heap is not seen.
  std::vector<std::string> notes;
  // Processes of the run that sent no census (never connected, turned away, or refused although
  // they were of the run). Any of them makes a steady verdict inconclusive.
  std::vector<UnheardProcess> unheard;
  std::vector<PeerInfo> refused;  // peers refused by the admission check, once per pid
  size_t turned_away = 0;         // connections closed unread for want of fds
};

// Runs `options.command` under the shim. Errors: bad options, missing shim, command not found or
// not executable, socket set-up failures. A command that fails is not an error: see child_exit.
absl::StatusOr<RunResult> RunUnderShim(const RunOptions& options);

// Up to this many stacks in a process, every site keeps its whole symbolised stack (SiteReport::
// frames), so FindSitesByFunction sees every caller of every stack.
inline constexpr size_t kFullStacksUpTo = 4096;

// Sites of `process` whose stack passes through `function`: a frame's demangled name equals it,
// or begins with it followed by '(' (so "leak_here" matches "leak_here(int)"). Optionally only
// sites of one kind. Ordered as in process.sites. Beyond kFullStacksUpTo stacks, only the frames
// up to the headline are searched for stacks the outputs do not print.
std::vector<const SiteReport*> FindSitesByFunction(const ProcessReport& process,
                                                   std::string_view function,
                                                   std::optional<wire::Kind> kind = std::nullopt);

// Processes whose exe path equals `exe` or ends with "/" + exe.
std::vector<const ProcessReport*> FindProcessesByExe(const RunResult& result, std::string_view exe);

// Turns what the collector received into reports: symbolised sites with headline frames,
// findings and totals. Exposed so that tests (and later an offline analysis) can reuse it.
// Drifting sites whose slope is within `budgets` for their kind become steady, with
// finding.within_budget set.
std::vector<ProcessReport> BuildProcessReports(std::vector<ConnectionRecord> records,
                                               const DriftAnalyzer& analyzer,
                                               Symbolizer& symbolizer,
                                               const DriftBudgets& budgets = {});

// What a run does once collection ended, shared with the replay of a recording (`driftwatch
// report`) so both take exactly the same steps: decides child_failed from child_exit and
// ended_by_us, builds the process reports with `options`' analysis settings, gives the direct
// child's (child_pid) last image its exit status, and computes the verdict.
void AnalyzeCollected(std::vector<ConnectionRecord> records, const RunOptions& options,
                      RunResult& result);

// drift if any group drifts; inconclusive if a sampled heap group rose by too few samples to
// judge, or no process sent enough censuses to judge.
Verdict ComputeVerdict(const std::vector<ProcessReport>& processes);

// True when the frame's module is libc (and its former parts libpthread, librt, libdl),
// libstdc++, libgcc_s, the dynamic loader or the shim.
bool IsRuntimeFrame(const Frame& frame);

// The index of the frame to name a site by: the first frame that is neither a runtime frame
// (IsRuntimeFrame) nor a standard-library template instantiated in the caller's module (e.g.
// std::thread::thread<...> around pthread_create, std::make_unique<...> around operator new).
// Falls back to the first non-runtime frame, then to 0. So a site created by fopen() or
// pthread_create() is named by the user's function that called it.
size_t HeadlineFrame(const std::vector<Frame>& frames);

// The exit codes of `driftwatch run` and `driftwatch report` (README "Exit codes").
inline constexpr int kExitSteady = 0;         // every process judged, no site keeps growing
inline constexpr int kExitDrift = 1;          // a site keeps growing
inline constexpr int kExitUsage = 2;          // bad usage, or a command the shim cannot measure
inline constexpr int kExitCommandFailed = 3;  // the command failed before the run ended
inline constexpr int kExitInconclusive = 4;   // too few censuses, or a process never heard from

// kExitCommandFailed if the command failed, else by verdict: drift 1, inconclusive 4, steady 0.
int ExitCodeFor(const RunResult& result);

}  // namespace dw::report
