#!/usr/bin/env bash
# POSIX timers created per request and never deleted: `driftwatch run` exits 1 with a drifting
# "timers" finding naming arm_request_timeout. The same loop without the leak exits 0.
# Usage: timer_leak_verdict.sh DRIFTWATCH PROGRAM [SECONDS]
set -u
driftwatch=$1 program=$2 seconds=${3:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/leak.json" -- "$program" \
  > "$work/leak.out" 2>&1
rc=$?
cat "$work/leak.out"
[ "$rc" -eq 1 ] || fail "leaking program: exit code $rc, expected 1"
jq -e '[.processes[].findings[] | select(.kind == "timers" and .status == "drifting")
        | select(any(.frames[]; .function == "arm_request_timeout"))] | length == 1' \
  "$work/leak.json" > /dev/null || fail "no drifting timers finding names arm_request_timeout"
echo "ok: timer leak detected"

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/steady.json" -- \
  "$program" no-leak > "$work/steady.out" 2>&1
rc=$?
cat "$work/steady.out"
[ "$rc" -eq 0 ] || fail "timer churn: exit code $rc, expected 0"
jq -e '[.processes[].findings[]] | length == 0' "$work/steady.json" > /dev/null ||
  fail "timer churn reported a finding"
echo "ok: timer churn is steady"
echo "2 passed, 0 failed"
