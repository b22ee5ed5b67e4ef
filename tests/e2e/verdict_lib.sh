# verdict_lib.sh: what every `driftwatch run` verdict test does, sourced by the scripts beside it
# and in the family folders. Before sourcing, set `driftwatch` (the command) and `seconds` (how
# long each run lasts). Each check runs one command under `driftwatch run`, prints its report
# only when it fails, and counts; `finish` prints the tally and sets the exit status.

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# run_soak NAME COMMAND...: runs COMMAND for $seconds; the report goes to $work/NAME.out, the
# verdict to $work/NAME.json; sets rc to driftwatch's exit code.
run_soak() {
  local name=$1
  shift
  "$driftwatch" run --duration "$seconds" --interval 250 --json "$work/$name.json" -- "$@" \
    > "$work/$name.out" 2>&1
  rc=$?
}

# check NAME JQ_FILTER MESSAGE: fails NAME with MESSAGE unless the filter holds on its verdict.
check() {
  jq -e "$2" "$work/$1.json" > /dev/null && return 0
  cat "$work/$1.out"
  fail "$1: $3"
  return 1
}

# expect_drift NAME KIND FUNCTION COMMAND...: exit 1, a drift verdict, a drifting KIND finding
# whose frames name FUNCTION, and no drifting finding anywhere else.
expect_drift() {
  local name=$1 kind=$2 function=$3
  shift 3
  run_soak "$name" "$@"
  if [ "$rc" -ne 1 ]; then
    cat "$work/$name.out"
    fail "$name: exit code $rc, expected 1"
    return 1
  fi
  check "$name" '.schema == "driftwatch.verdict.v1" and .verdict == "drift"' \
    "JSON verdict is not drift" || return 1
  check "$name" "[.processes[].findings[] | select(.kind == \"$kind\" and .status == \"drifting\")
      | select(any(.frames[]; .function == \"$function\"))] | length >= 1" \
    "no drifting $kind finding names $function" || return 1
  check "$name" "[.processes[].findings[] | select(.status == \"drifting\")
      | select(all(.frames[]; .function != \"$function\"))] | length == 0" \
    "a drifting finding does not involve $function" || return 1
  echo "ok: $name drifts at $function"
  passed=$((passed + 1))
}

# expect_steady NAME COMMAND...: exit 0, a steady verdict, and no finding at all.
expect_steady() {
  local name=$1
  shift
  run_soak "$name" "$@"
  if [ "$rc" -ne 0 ]; then
    cat "$work/$name.out"
    fail "$name: exit code $rc, expected 0"
    return 1
  fi
  check "$name" '.verdict == "steady" and ([.processes[].findings[]] | length == 0)' \
    "verdict not steady, or findings reported" || return 1
  echo "ok: $name is steady"
  passed=$((passed + 1))
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
