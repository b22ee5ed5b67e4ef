// report_output.h: renders a RunResult as the terminal report and as the verdict JSON
// (schema "driftwatch.verdict.v1"; later versions extend it, never break it).
//
// Thread-safety: stateless functions, safe from any thread on distinct results.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "report/run_command.h"

namespace dw::report {

inline constexpr char kVerdictSchema[] = "driftwatch.verdict.v1";

// The non-steady sites of a process, drifting before warming, fastest growth first.
std::vector<const SiteReport*> Findings(const ProcessReport& process);

// "512 B", "12.3 KiB", "4.0 MiB", ...; negative values keep their sign.
std::string FormatBytes(double bytes);
// "+12.3 KiB/h" for bytes, "+3.5/h" for counts.
std::string FormatSlope(double slope_per_hour, const std::string& unit);

// The verdict JSON document.
std::string RenderVerdictJson(const RunResult& result);
// Writes RenderVerdictJson() to `path` atomically (temporary file, then rename).
absl::Status WriteVerdictJson(const RunResult& result, const std::string& path);

// The human report: verdict first, then per process the sites that grew most with their
// headline frame and the stack below it. At most `max_sites` findings per process.
void PrintTerminalReport(const RunResult& result, std::FILE* out, size_t max_sites = 10);

}  // namespace dw::report
