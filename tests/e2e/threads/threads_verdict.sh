#!/usr/bin/env bash
# `driftwatch run` as a soak gate for a thread leak: parked_threads -r spawns a worker that
# waits forever every 100 ms at spawn_worker -> exit 1, a drifting "threads" finding whose
# frames name spawn_worker, and no drifting finding elsewhere. thread_churn forever (joined and
# detached threads at a steady rate) -> exit 0 and no finding at all.
# Usage: threads_verdict.sh DRIFTWATCH PARKED_PROGRAM CHURN_PROGRAM [SECONDS]
set -u
driftwatch=$1 parked=$2 churn=$3 seconds=${4:-10}
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

expect_drift parked_threads threads spawn_worker "$parked" -r 100
expect_steady thread_churn "$churn" forever
finish
