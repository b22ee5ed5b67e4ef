#!/usr/bin/env bash
# `driftwatch run` as a soak gate for a thread leak: parked_threads -r spawns a worker that
# waits forever every 100 ms at spawn_worker -> exit 1, a drifting "threads" finding whose
# frames name spawn_worker, and no drifting finding elsewhere. thread_churn forever (joined and
# detached threads at a steady rate) -> exit 0 and no finding at all.
# Usage: threads_verdict.sh DRIFTWATCH PARKED_PROGRAM CHURN_PROGRAM [SECONDS]
set -u
driftwatch=$1 parked=$2 churn=$3 seconds=${4:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/parked.json" -- \
  "$parked" -r 100 > "$work/parked.out" 2>&1
rc=$?
cat "$work/parked.out"
[ "$rc" -eq 1 ] || fail "thread leak: exit code $rc, expected 1"
jq -e '.verdict == "drift"' "$work/parked.json" > /dev/null || fail "JSON verdict is not drift"
jq -e '[.processes[].findings[] | select(.kind == "threads" and .status == "drifting")
        | select(any(.frames[]; .function == "spawn_worker"))] | length >= 1' \
  "$work/parked.json" > /dev/null || fail "no drifting threads finding names spawn_worker"
jq -e '[.processes[].findings[] | select(.status == "drifting")
        | select(all(.frames[]; .function != "spawn_worker"))] | length == 0' \
  "$work/parked.json" > /dev/null || fail "a drifting finding does not involve spawn_worker"
echo "ok: thread leak detected at spawn_worker"

"$driftwatch" run --duration "$seconds" --interval 250 --json "$work/churn.json" -- \
  "$churn" forever > "$work/churn.out" 2>&1
rc=$?
cat "$work/churn.out"
[ "$rc" -eq 0 ] || fail "thread churn: exit code $rc, expected 0"
jq -e '.verdict == "steady" and ([.processes[].findings[]] | length == 0)' "$work/churn.json" \
  > /dev/null || fail "thread churn: verdict not steady, or findings reported"
echo "ok: thread churn is steady"
echo "2 passed, 0 failed"
