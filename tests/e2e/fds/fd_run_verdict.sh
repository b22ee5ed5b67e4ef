#!/usr/bin/env bash
# `driftwatch run` as a soak gate for fd leaks: each leaking program exits 1 with a drifting "fds"
# finding whose frames name the leaking function; steady fd churn of every kind exits 0 with no
# finding.
# Usage: fd_run_verdict.sh DRIFTWATCH PROGRAM_DIR [SECONDS]
set -u
driftwatch=$1 programs=$2 seconds=${3:-12}
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

expect_drift subprocess_pipe fds run_helper "$programs/e2e_leak_subprocess_pipe"
expect_drift socket_early_return fds probe_endpoint "$programs/e2e_leak_socket_early_return"
expect_drift fopen_file fds read_status "$programs/e2e_leak_fopen_file"
expect_drift timerfds fds arm_request_timeout "$programs/e2e_leak_timerfds"
expect_steady steady_fd_churn "$programs/e2e_steady_fd_churn"
finish
