#!/usr/bin/env bash
# Verdicts of `driftwatch run` on real programs in sampled mode, and stacks grouped by
# allocation site (issue 10), by exit code, terminal report and JSON:
#   a fast leak sampled every 64 KiB       -> drift at record_audit_entry; heap figures marked
#                                             as estimates with the rate;
#   a slow leak hit by a few samples       -> never steady: inconclusive, saying how long a run
#                                             would tell (or drift, if the samples were many);
#   bounded churn, sampled                 -> steady (the noise alone is not a finding);
#   a recursive parser leaking at one line -> one drifting finding for its hundreds of stacks,
#                                             with the largest listed.
# Usage: sampled_verdict.sh DRIFTWATCH BIN_DIR [SECONDS]
set -u
driftwatch=$1 bin=$2 seconds=${3:-12}
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

# run_with NAME OPTIONS... -- COMMAND...: like run_soak, with extra options for `run`.
run_with() {
  local name=$1 options=()
  shift
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  "$driftwatch" run --duration "$seconds" --interval 250 "${options[@]}" \
    --json "$work/$name.json" -- "$@" > "$work/$name.out" 2>&1
  rc=$?
}

expect() {  # expect NAME CONDITION MESSAGE: the shell condition must hold
  if ! eval "$2"; then
    cat "$work/$1.out"
    fail "$1: $3"
    return 1
  fi
}

fast_leak() {
  local name=sampled_fast_leak
  run_with $name --mode sampled --sample-bytes 64KiB -- "$bin/e2e_leak_per_request" 256
  expect $name '[ "$rc" -eq 1 ]' "exit code $rc, expected 1 (drift)" || return
  check $name '.mode == "sampled" and .sample_mean_bytes == 65536 and .verdict == "drift"' \
    "JSON does not say sampled at 64 KiB with a drift verdict" || return
  check $name '[.processes[] | select(.heap_estimated)] | length >= 1' \
    "no process says its heap figures are estimates" || return
  check $name '[.processes[].findings[] | select(.kind == "heap" and .status == "drifting"
      and .estimated and .sample_mean_bytes == 65536 and .samples_in_rise >= 9.5)
      | select(any(.frames[]; .function == "record_audit_entry"))] | length == 1' \
    "no drifting estimated heap finding at record_audit_entry" || return
  expect $name 'grep -q "heap figures are estimates (sampled mode, one sample per 64.0 KiB" \
    "$work/$name.out"' "the report does not mark heap figures as estimates" || return
  echo "ok: $name drifts at record_audit_entry, figures marked as estimates"
  passed=$((passed + 1))
}

slow_leak() {
  # 2 KiB/s for 12 s at 4 KiB sampling: about 6 samples, too few to judge.
  local name=sampled_slow_leak
  run_with $name --mode sampled --sample-bytes 4KiB -- "$bin/e2e_leak_per_request" 2
  if [ "$rc" -eq 0 ]; then
    # Hit by so few samples (0-2: about 6% of runs) that nothing rose: a steady verdict is then
    # allowed only with the floor that says this leak was too slow to see (2 KiB/s).
    check $name '.verdict == "steady" and ([.processes[].heap_detectable_slope_per_hour
        | select(. != null and . > 2048 * 3600)] | length >= 1)' \
      "steady without a detection floor above the leak's rate" || return
    expect $name 'grep -q "sampled heap: leaks below ~.* per site are too slow" \
      "$work/$name.out"' "the steady verdict does not state its floor" || return
    echo "ok: $name hit by too few samples; steady with a floor above its rate"
  elif [ "$rc" -eq 4 ]; then
    check $name '[.processes[].findings[] | select(.kind == "heap" and .status == "inconclusive"
        and .needed_run_s > 12) | select(any(.frames[]; .function == "record_audit_entry"))]
        | length == 1' "no inconclusive heap finding with the run length it needs" || return
    expect $name 'grep -q "at 4.0 KiB sampling, a leak of .* needs ~.* to detect" \
      "$work/$name.out"' "the report does not say how long a run would tell" || return
    echo "ok: $name is inconclusive, with the run length that would tell"
  else
    expect $name '[ "$rc" -eq 1 ]' "exit code $rc, expected 4 or 1" || return
    echo "ok: $name drifts (enough samples hit it this time)"
  fi
  passed=$((passed + 1))
}

churn() {
  local name=sampled_churn
  run_with $name --mode sampled --sample-bytes 4KiB -- "$bin/e2e_bounded_churn"
  expect $name '[ "$rc" -eq 0 ]' "exit code $rc, expected 0 (steady)" || return
  # A warm-up seen through sampling noise may be listed as warming; never drifting or
  # inconclusive.
  check $name '.verdict == "steady" and ([.processes[].findings[]
      | select(.status == "drifting" or .status == "inconclusive")] | length == 0)' \
    "verdict not steady, or a drifting or inconclusive finding reported" || return
  echo "ok: $name is steady"
  passed=$((passed + 1))
}

recursive() {
  local name=grouped_recursive_parser
  run_with $name -- "$bin/e2e_recursive_parser"
  expect $name '[ "$rc" -eq 1 ]' "exit code $rc, expected 1 (drift)" || return
  check $name '[.processes[].findings[] | select(.kind == "heap" and .status == "drifting")]
      | length == 1' "not exactly one drifting heap finding" || return
  check $name '[.processes[].findings[] | select(.status == "drifting" and .stack_count >= 50
      and (.stacks | length) >= 5 and any(.frames[]; .function == "keep_node"))] | length == 1' \
    "the drifting finding is not one group of many stacks at keep_node" || return
  check $name '.processes[0].stack_count > .processes[0].site_count' \
    "stacks were not grouped" || return
  expect $name 'grep -q "stacks allocate here; the largest" "$work/$name.out"' \
    "the report does not list the group's stacks" || return
  echo "ok: $name is one drifting site of $(jq '[.processes[].findings[].stack_count] | max' \
    "$work/$name.json") stacks"
  passed=$((passed + 1))
}

fast_leak
slow_leak
churn
recursive
finish
