#!/usr/bin/env bash
# `driftwatch run` as a soak gate: its exit code is the verdict and its JSON names the leak.
#   leak_per_request (100 bytes per request from record_audit_entry) -> exit 1, a drifting heap
#   finding whose frames name record_audit_entry;
#   bounded_churn -> exit 0, no finding.
# Usage: run_verdict.sh DRIFTWATCH LEAK_PROGRAM CHURN_PROGRAM [SECONDS]
set -u
driftwatch=$1 leak=$2 churn=$3 seconds=${4:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/leak.json" -- "$leak" \
  > "$work/leak.out" 2>&1
rc=$?
cat "$work/leak.out"
[ "$rc" -eq 1 ] || fail "leaking program: exit code $rc, expected 1"
jq -e '.schema == "driftwatch.verdict.v1" and .verdict == "drift"' "$work/leak.json" > /dev/null ||
  fail "leaking program: JSON verdict is not drift"
jq -e '[.processes[].findings[] | select(.kind == "heap" and .status == "drifting")
        | select(any(.frames[]; .function == "record_audit_entry"))] | length >= 1' \
  "$work/leak.json" > /dev/null || fail "no drifting heap finding names record_audit_entry"
jq -e '[.processes[].findings[] | select(.status == "drifting")
        | select(all(.frames[]; .function != "record_audit_entry"))] | length == 0' \
  "$work/leak.json" > /dev/null || fail "a drifting finding does not involve the leak"
echo "ok: leak detected"

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/churn.json" -- "$churn" \
  > "$work/churn.out" 2>&1
rc=$?
cat "$work/churn.out"
[ "$rc" -eq 0 ] || fail "steady program: exit code $rc, expected 0"
jq -e '.verdict == "steady" and ([.processes[].findings[]] | length == 0)' "$work/churn.json" \
  > /dev/null || fail "steady program: verdict not steady, or findings reported"
echo "ok: churn is steady"
echo "2 passed, 0 failed"
