// exit_codes.h: the exit codes of `driftwatch run` and `driftwatch report` (README "Exit codes"),
// and the one a run's result maps to.
//
// Thread-safety: stateless. Allocation: no. Never runs inside a hook.
#pragma once

#include "report/model/run_result.h"

namespace dw::report {

inline constexpr int kExitSteady = 0;         // every process judged, no site keeps growing
inline constexpr int kExitDrift = 1;          // a site keeps growing
inline constexpr int kExitUsage = 2;          // bad usage, or a command the shim cannot measure
inline constexpr int kExitCommandFailed = 3;  // the command failed before the run ended
inline constexpr int kExitInconclusive = 4;   // too few censuses, or a process never heard from

// kExitCommandFailed if the command failed, else by verdict: drift 1, inconclusive 4, steady 0.
int ExitCodeFor(const RunResult& result);

}  // namespace dw::report
