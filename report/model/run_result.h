// run_result.h: the output model: what a run (or the replay of a recording) found, process by
// process and site by site, and its verdict. Plain data filled by the analysis
// (report/analysis/process_analysis.h) and read by the outputs (report/outputs/) and the
// commands; the lookups at the end are for tests.
//
// Thread-safety: plain data, no internal locking; the lookups are const. Allocation: yes
// (collector code). Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "preload/wire_format.h"
#include "report/decode/census.h"
#include "report/model/finding.h"
#include "report/store/process_series.h"
#include "report/symbols/frames.h"
#include "report/transport/peer.h"

namespace dw::report {

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

// One stack of a group (SiteReport::members).
struct GroupMember {
  uint32_t site_id = 0;
  size_t site_index = 0;  // into ProcessReport::sites
  int64_t live = 0;       // latest census
  int64_t live_bytes = 0;
  // What the member added to the group's value (live bytes for heap, live count otherwise) over
  // the group's analysed window: its value at the end minus at the window's start (0 before the
  // member's first point). The members of a growing group are ranked by it.
  double growth = 0;
  // The member's part of the group's latest value, in [0, 1] when nothing is negative.
  double share = 0;
  // Rises minus falls of its series over the window: how steadily it grows, whatever its size.
  int64_t steadiness = 0;
  // Its own series was analysed: the site's finding (ProcessReport::sites) is its own verdict.
  // Only the kAnalysedMembers largest members of a group are, and up to kAnalysedMembers more
  // that rise most steadily, so 100k stacks cost at most 10 analyses (analysis/site_groups.h).
  bool analysed = false;
};

// A process of the run that the collector did not hear from (not one census connection).
struct UnheardProcess {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string exe;
  std::string reason;  // e.g. "never connected (lived 12.0 s)", "turned away: collector out of fds"
};

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
  // needs (a whole stack symbolised costs ~5 KB: 150k of them were 1.3 GB). Outside what the
  // outputs print, runtime frames (libc...) have their function name only (Frame::names_only).
  std::vector<Frame> frames;
  // Index into frames of the user's frame: see HeadlineFrame() in symbols/frames.h.
  size_t headline = 0;
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
  // For a group (ProcessReport::groups, analysis/site_groups.h): every stack of the allocation
  // site, largest contribution first; the fields above are the group's sums and the verdict of its
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

// Sites of `process` whose stack passes through `function`: a frame's demangled name equals it,
// or begins with it followed by '(' (so "leak_here" matches "leak_here(int)"). Optionally only
// sites of one kind. Ordered as in process.sites. Beyond kFullStacksUpTo stacks
// (analysis/process_analysis.h), only the frames up to the headline are searched for stacks the
// outputs do not print.
std::vector<const SiteReport*> FindSitesByFunction(const ProcessReport& process,
                                                   std::string_view function,
                                                   std::optional<wire::Kind> kind = std::nullopt);

// Processes whose exe path equals `exe` or ends with "/" + exe.
std::vector<const ProcessReport*> FindProcessesByExe(const RunResult& result, std::string_view exe);

}  // namespace dw::report
