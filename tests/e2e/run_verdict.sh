#!/usr/bin/env bash
# `driftwatch run` as a soak gate: its exit code is the verdict and its JSON names the leak.
#   leak_per_request (100 bytes per request from record_audit_entry) -> exit 1, a drifting heap
#   finding whose frames name record_audit_entry;
#   bounded_churn -> exit 0, no finding.
# Usage: run_verdict.sh DRIFTWATCH LEAK_PROGRAM CHURN_PROGRAM [SECONDS]
set -u
driftwatch=$1 leak=$2 churn=$3 seconds=${4:-15}
source "$(dirname "${BASH_SOURCE[0]}")/verdict_lib.sh"

expect_drift leak_per_request heap record_audit_entry "$leak"
expect_steady bounded_churn "$churn"
finish
