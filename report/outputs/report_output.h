// report_output.h: renders a RunResult as the terminal report and as the verdict JSON
// (schema "driftwatch.verdict.v1"; later versions extend it, never break it).
//
// Thread-safety: stateless functions, safe from any thread on distinct results.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "report/model/run_result.h"

namespace dw::report {

inline constexpr char kVerdictSchema[] = "driftwatch.verdict.v1";

// The non-steady groups of a process (ProcessReport::groups: one per allocation site, see
// site_groups.h): drifting before the others; then the counted kinds (threads,
// fds, timers: they run into hard limits) before heap; then fastest growth first.
std::vector<const SiteReport*> Findings(const ProcessReport& process);

// "512 B", "12.3 KiB", "4.0 MiB", ...; negative values keep their sign.
std::string FormatBytes(double bytes);
// "3.5", "720", "1.2k", "4.5M", ...; negative values keep their sign.
std::string FormatCount(double count);
// "+12.3 KiB/h" for bytes, "+3.5/h" or "+1.2k/h" for counts.
std::string FormatSlope(double slope_per_hour, const std::string& unit);
// "850ms", "42s", "5m12s", "3h04m", "2d05h".
std::string FormatDuration(uint64_t milliseconds);
// The wall clock as seconds since the epoch.
double NowUnixSeconds();
// "2026-12-02T07:50:01Z"; `unknown` for a time that is not known (0 or less).
std::string FormatUtc(double unix_s, std::string_view unknown = "?");
// How long a process started at `started_unix_s` has lived at `now_unix_s`, as FormatDuration
// says it; "?" when the start is unknown or later.
std::string FormatLifetime(double started_unix_s, double now_unix_s);

// What a threads site's live threads are doing, in words, e.g. "40 threads, all sleeping in
// futex_wait_queue; all idle over a minute, longest 5m12s".
std::string DescribeThreadState(const ThreadSiteState& state);

// The short DETAIL column of a finding: "6000 blocks" (heap), "socket/inet,pipe" (fds),
// "notify=thread" (timers), "sleeping" or "mixed" (threads); "-" when nothing is known.
std::string FindingDetail(const SiteReport& site);

// For a drifting fds, threads or heap finding: when the process would reach the tightest known
// limit of `process.limits` at the site's rate, e.g. "reaches RLIMIT_NOFILE (1024) in ~47m at
// this rate". Empty when no limit is known, or the site does not grow.
std::string ProjectLimit(const ProcessReport& process, const SiteReport& site);

// "27.9 days", "5.2 hours", "47 min", "30 s".
std::string FormatTimeToLimit(double seconds);

// The finding in one sentence (JSON "detail"): "fds: +6.0/h, RLIMIT_NOFILE 4096 reached in
// 27.9 days", "heap: +2.0 MiB/h, within the budget of 10.0 MiB/h", "timers: +720/h, no known
// limit"; sampled heap findings say "heap (estimated)", and inconclusive ones end with
// SamplingSentence().
std::string FindingSentence(const SiteReport& site);

// "12.0 KiB/min" from bytes per hour.
std::string FormatRatePerMinute(double bytes_per_hour);

// For an inconclusive sampled heap finding: "at 512.0 KiB sampling, a leak of 10.0 KiB/min
// needs ~8h09m to detect" (docs/SAMPLING.md); empty for any other finding.
std::string SamplingSentence(const DriftFinding& finding);

// The RSS reconciliation in one sentence: "RSS grows +30.0 MiB/h while the tracked heap is flat:
// fragmentation or memory outside malloc (mmap, thread stacks, a custom allocator); MemTotal
// 7.8 GiB reached in 11.2 days".
// `sampled_heap_floor_per_hour`: in sampled mode, the slowest heap growth per site the run can
// resolve (0 in exact mode).
std::string RssSentence(const RssFinding& finding, double sampled_heap_floor_per_hour);

// A drifting process total in one sentence: "fds (process total): +3.6k/h, RLIMIT_NOFILE 4096
// reached in 67 min".
std::string TotalTrendSentence(const TotalTrend& trend);

// The verdict JSON document.
std::string RenderVerdictJson(const RunResult& result);
// Writes RenderVerdictJson() to `path` atomically (temporary file, then rename).
absl::Status WriteVerdictJson(const RunResult& result, const std::string& path);

// The human report: verdict first, then per process the sites that grew most with their
// headline frame and the stack below it. At most `max_sites` findings per process.
void PrintTerminalReport(const RunResult& result, std::FILE* out, size_t max_sites = 10);

}  // namespace dw::report
