// prometheus_exposition.h: the output stage of `driftwatch collect --metrics`: the Prometheus
// text exposition format (version 0.0.4) of what the collector knows now: each live process's
// totals and verdict, the top sites of each process (live gauges, slopes, verdicts, time to
// limit) and the collector's own health. docs/PROMETHEUS.md lists every metric.
//
// Two steps, so that a collector with many processes renders each one once per analysis, not
// once per scrape: SampleProcess turns one process's report into its sample lines, grouped by
// metric family; RenderExposition puts the families of every live process and the health
// figures together under their HELP and TYPE lines. Both are pure functions of their arguments.
// A process with totals and no sites (one watched from /proc) has process series only.
//
// Label sets are stable from one analysis to the next: enum-style series (verdicts) carry every
// state, 0 or 1; a site is named by a hash of its grouping key (site_groups.h), the same for the
// same call site in every process lifetime. Ended processes have no series here: the caller
// drops their samples, and Prometheus marks their series stale.
//
// Thread-safety: stateless functions over the caller's data. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "report/analysis/live_processes.h"
#include "report/model/run_result.h"

namespace dw::report {

struct PrometheusOptions {
  static constexpr size_t kDefaultTopSites = 10;
  // Sites per process with series of their own (bounded cardinality): drifting sites first, then
  // warming and inconclusive ones, then the largest.
  size_t top_sites = kDefaultTopSites;
};

// The metric families of one process; their order is that of the exposition.
enum class ProcessFamily : size_t {
  kStartTime,
  kRss,
  kFds,
  kThreads,
  kHeapLive,
  kTimers,
  kCensuses,
  kCensusesDropped,
  kVerdict,
  kTotalTimeToLimit,
  kSiteLiveBytes,
  kSiteLiveObjects,
  kSiteGrowthBytes,
  kSiteGrowthObjects,
  kSiteVerdict,
  kSiteTimeToLimit,
  kCount,
};

// One process's sample lines ("name{labels} value\n"), by family; no HELP or TYPE lines.
struct ProcessSamples {
  std::array<std::string, static_cast<size_t>(ProcessFamily::kCount)> lines;
  size_t sites = 0;  // sites given series of their own
};

ProcessSamples SampleProcess(const ProcessLabel& label, const ProcessReport& report,
                             Verdict verdict, const PrometheusOptions& options);

// The collector's own figures. Totals are over the collector's life: they never go backwards.
struct CollectorHealth {
  std::string version;                 // driftwatch_build_info
  double started_unix_s = 0;           // when the collector started
  size_t connected = 0;                // live processes
  std::array<uint64_t, 3> ended = {};  // ended processes by Verdict (kSteady, kDrift, ...)
  uint64_t censuses_received = 0;      // by every process, live and ended
  uint64_t censuses_dropped = 0;       // as the shims report them (not sent: collector slow)
  uint64_t sequence_gaps = 0;          // censuses sent and lost (gaps in sequence numbers)
  uint64_t stream_errors = 0;          // connections ended by a corrupt or truncated stream
  uint64_t refused = 0;                // peers refused by the admission check (distinct pids)
  uint64_t turned_away = 0;            // connections closed unread for want of fds
  uint64_t analyses = 0;               // analysis passes over the live processes
  double last_analysis_seconds = 0;    // how long the latest pass took
  double last_analysis_unix_s = 0;     // when it ended; 0 before the first
};

// The whole exposition: every family with its HELP and TYPE lines, the processes' samples in
// the given order, then the health families.
std::string RenderExposition(const std::vector<const ProcessSamples*>& processes,
                             const CollectorHealth& health);

// A label value escaped as the format wants: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);
// A sample value: integers exactly, others in the shortest form that reads back the same;
// NaN, +Inf and -Inf by those names.
std::string FormatSampleValue(double value);

}  // namespace dw::report
