// e2e_support.h: what every end-to-end test does: run one of the programs built beside it under
// the real shim, through the real collector, and add up census figures by function.
//
// Thread-safety: call from the test's main thread only (RunUnderShim forks and handles
// signals). Allocation: yes (test code). Never runs inside a hook.
// pre: the including target defines DW_PROGRAM_DIR (where the programs are) and DW_SHIM_PATH;
// LineOf also needs DW_PROGRAM_SOURCE_DIR (where their sources are).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "report/commands/run_command.h"

namespace dw::report::e2e {

// Runs DW_PROGRAM_DIR/name under the shim at a 100 ms census interval, until it exits (or for
// `duration_s`), and expects it to succeed. `sample_mean_bytes` non-zero: in sampled mode.
inline RunResult RunProgram(const std::string& name, std::vector<std::string> arguments = {},
                            std::optional<double> duration_s = std::nullopt,
                            uint32_t sample_mean_bytes = 0) {
  RunOptions options;
  options.sample_mean_bytes = sample_mean_bytes;
  options.command = {std::string(DW_PROGRAM_DIR) + "/" + name};
  options.command.insert(options.command.end(), arguments.begin(), arguments.end());
  options.interval_ms = 100;
  options.duration_s = duration_s;
  options.shim_path = DW_SHIM_PATH;
  options.forward_signals = false;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  EXPECT_FALSE(result->child_failed) << name << " exited with " << result->child_exit.code
                                     << " (signal " << result->child_exit.signal << ")";
  return *std::move(result);
}

// The one process of a run, which must have delivered its final census.
inline const ProcessReport& OnlyProcess(const RunResult& result) {
  static const ProcessReport kEmpty;
  EXPECT_EQ(result.processes.size(), 1u);
  if (result.processes.empty()) return kEmpty;
  EXPECT_TRUE(result.processes[0].saw_final) << "no final census";
  return result.processes[0];
}

struct SiteTotals {
  int64_t live = 0, live_bytes = 0;
  uint64_t acquired = 0, released = 0;
  uint32_t detail = 0;  // ORed detail bits (fd types, timer notification)
};

// Sums the sites of `kind` whose stack passes through `function`.
inline SiteTotals TotalsAt(const ProcessReport& process, const std::string& function,
                           wire::Kind kind) {
  SiteTotals totals;
  for (const SiteReport* site : FindSitesByFunction(process, function, kind)) {
    totals.live += site->live;
    totals.live_bytes += site->live_bytes;
    totals.acquired += site->counters.acquired;
    totals.released += site->counters.released;
    totals.detail |= site->counters.detail;
  }
  return totals;
}

#ifdef DW_PROGRAM_SOURCE_DIR
// The line of `marker` in a program's source under DW_PROGRAM_SOURCE_DIR, so that tests follow
// edits to the program. -1 when absent.
inline int LineOf(const std::string& program, const std::string& marker) {
  std::ifstream source(std::string(DW_PROGRAM_SOURCE_DIR) + "/" + program);
  std::string text;
  for (int line = 1; std::getline(source, text); ++line) {
    if (text.find(marker) != std::string::npos) return line;
  }
  return -1;
}
#endif

}  // namespace dw::report::e2e
