#!/usr/bin/env bash
# POSIX timers created per request and never deleted: `driftwatch run` exits 1 with exactly one
# drifting "timers" finding, naming arm_request_timeout. The same loop without the leak exits 0.
# Usage: timer_leak_verdict.sh DRIFTWATCH PROGRAM [SECONDS]
set -u
driftwatch=$1 program=$2 seconds=${3:-12}
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

if expect_drift timer_leak timers arm_request_timeout "$program"; then
  check timer_leak '[.processes[].findings[] | select(.kind == "timers" and .status == "drifting")]
      | length == 1' "more than one drifting timers finding"
fi
expect_steady timer_churn "$program" no-leak
finish
