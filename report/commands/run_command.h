// run_command.h: `driftwatch run` as a library: runs a command under the shim and collects.
//
// RunUnderShim() forks and execs the command with LD_PRELOAD=<shim>[:<previous LD_PRELOAD>],
// DRIFTWATCH_SOCKET and DRIFTWATCH_INTERVAL_MS, collects every census of every process that
// connects (the command, its children, each exec image), stops the command after the optional
// duration (SIGTERM, then SIGKILL after a grace period), waits briefly for final censuses, then
// hands what it collected to the analysis (AnalyzeCollected, report/analysis/process_analysis.h).
// It only supervises: the output model is report/model/, the policy report/analysis/.
// End-to-end tests call it directly.
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
#include "report/analysis/process_analysis.h"
#include "report/commands/env_command.h"
#include "report/commands/exit_codes.h"
#include "report/model/run_result.h"
#include "report/transport/collector.h"

namespace dw::report {

// How to run the command, plus how to judge what it sent (the analysis settings, shared with
// `driftwatch report`, are the base so that AnalyzeCollected takes them as they are).
struct RunOptions : AnalysisOptions {
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
  // Sees every connection's raw bytes (driftwatch run --record); not owned, null for none.
  Collector::Tap* tap = nullptr;
};

// Runs `options.command` under the shim. Errors: bad options, missing shim, command not found or
// not executable, socket set-up failures. A command that fails is not an error: see child_exit.
absl::StatusOr<RunResult> RunUnderShim(const RunOptions& options);

}  // namespace dw::report
