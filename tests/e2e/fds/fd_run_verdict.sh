#!/usr/bin/env bash
# `driftwatch run` as a soak gate for fd leaks: each leaking program exits 1 with a drifting "fds"
# finding whose frames name the leaking function; steady fd churn of every kind exits 0 with no
# finding.
# Usage: fd_run_verdict.sh DRIFTWATCH PROGRAM_DIR [SECONDS]
set -u
driftwatch=$1 programs=$2 seconds=${3:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# expect_leak PROGRAM FUNCTION
expect_leak() {
  local program=$1 function=$2 json="$work/$1.json"
  "$driftwatch" run --duration "$seconds" --interval 250 --json "$json" -- "$programs/$program" \
    > "$work/$program.out" 2>&1
  local rc=$?
  if [ "$rc" -ne 1 ]; then
    cat "$work/$program.out"
    fail "$program: exit code $rc, expected 1"
    return
  fi
  if ! jq -e --arg f "$function" '[.processes[].findings[]
        | select(.kind == "fds" and .status == "drifting")
        | select(any(.frames[]; .function == $f))] | length >= 1' "$json" > /dev/null; then
    cat "$work/$program.out"
    fail "$program: no drifting fds finding names $function"
    return
  fi
  if ! jq -e --arg f "$function" '[.processes[].findings[] | select(.status == "drifting")
        | select(all(.frames[]; .function != $f))] | length == 0' "$json" > /dev/null; then
    cat "$work/$program.out"
    fail "$program: a drifting finding does not involve $function"
    return
  fi
  echo "ok: $program drifts at $function"
  passed=$((passed + 1))
}

expect_leak e2e_leak_subprocess_pipe run_helper
expect_leak e2e_leak_socket_early_return probe_endpoint
expect_leak e2e_leak_fopen_file read_status
expect_leak e2e_leak_timerfds arm_request_timeout

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/churn.json" -- \
  "$programs/e2e_steady_fd_churn" > "$work/churn.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$work/churn.out"
  fail "steady fd churn: exit code $rc, expected 0"
elif ! jq -e '.verdict == "steady" and ([.processes[].findings[]] | length == 0)' \
    "$work/churn.json" > /dev/null; then
  cat "$work/churn.out"
  fail "steady fd churn: verdict not steady, or findings reported"
else
  echo "ok: steady fd churn"
  passed=$((passed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
