#!/usr/bin/env bash
# `driftwatch collect --state DIR` under a real leaking program and the real shim, then
# `driftwatch report` on what it kept. Three collectors run side by side (about 15 s in all):
#  1. small segments (12 KiB of census data each), so that several roll while the leak runs;
#     `report` on (a) the process directory, (b) a middle segment alone, (c) a --since/--until
#     window and (d) all of DIR must give the verdict drift at record_audit_entry, with the
#     directory's slope and census count equal to collect's end line (one stream, the key frames
#     counted once) and the others' slopes close to it (the leak is steady);
#  2. a total cap (--state-max-bytes 10KiB with 3 KiB segments): the oldest segments are deleted,
#     the files stay under the cap, and what is left still replays;
#  3. a collector killed by SIGKILL: its last segment (flushed every 2 s, never closed) replays
#     with a warning that it is cut off.
# Usage: collect_state.sh DRIFTWATCH LEAK_PER_REQUEST
set -u
driftwatch=$1 leak=$2
seconds=0  # verdict_lib.sh's run_soak is not used here
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # FILE PATTERN SECONDS
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2> /dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# start_collector NAME OPTIONS...: a collector on $work/NAME.sock logging to $work/NAME.log.
start_collector() {
  local name=$1
  shift
  "$driftwatch" collect --socket "$work/$name.sock" --check-every 1 --log "$work/$name.log" "$@" &
  collector=$!
  pids+=("$collector")
  wait_for "$work/$name.log" "listening on" 5 || fail "collector $name did not start"
}

# start_leak NAME: the leak (64 KiB/s, exact mode, a census every 100 ms) sending to NAME.sock.
start_leak() {
  (
    eval "$("$driftwatch" env --socket "$work/$1.sock" --interval 100 --mode exact)" || exit 1
    exec "$leak" 64
  ) &
  started=$!
  pids+=("$started")
}

# slope_bytes TEXT: "+224.9 MiB/h" (the first in TEXT) in bytes per hour.
slope_bytes() {
  grep -Eo '\+[0-9.]+ (B|KiB|MiB|GiB)/h' <<< "$1" | head -1 |
    awk '{ s = substr($1, 2); u = $2; m = (u ~ /^KiB/) ? 1024 : (u ~ /^MiB/) ? 1048576 : (u ~ /^GiB/) ? 1073741824 : 1; printf "%.0f", s * m }'
}

# check_report LABEL MIN_RATIO MAX_RATIO REPORT-ARGS...: `report --json` gives drift at
# record_audit_entry with a slope between MIN_RATIO and MAX_RATIO times the live one.
check_report() {
  local label=$1 low=$2 high=$3
  shift 3
  local json=$work/$label.json
  "$driftwatch" report --json "$json" "$@" > "$work/$label.out" 2> "$work/$label.err"
  local rc=$?
  local verdict slope frame
  verdict=$(jq -r .verdict "$json" 2> /dev/null)
  slope=$(jq -r '[.processes[].findings[] | select(.status == "drifting")][0].slope_per_hour' \
    "$json" 2> /dev/null)
  frame=$(jq -r '[.processes[].findings[] | select(.status == "drifting")][0].frames[0].function' \
    "$json" 2> /dev/null)
  if [ "$rc" -eq 1 ] && [ "$verdict" = drift ] && [ "$frame" = record_audit_entry ] &&
    awk -v s="$slope" -v l="$live_slope" -v lo="$low" -v hi="$high" \
      'BEGIN { exit !(s >= l * lo && s <= l * hi) }'; then
    passed=$((passed + 1))
    echo "ok: report $label: drift at $frame, $slope B/h (live $live_slope B/h)"
  else
    cat "$work/$label.out" "$work/$label.err"
    fail "report $label: exit $rc, verdict '$verdict', frame '$frame', slope '$slope' B/h, live $live_slope B/h (want x$low..x$high)"
  fi
}

# 1. Several segments, replayed every way.
start_collector main --state "$work/state" --state-segment-bytes 12KiB
main=$collector
# 2. The total cap.
start_collector capped --state "$work/capped" --state-segment-bytes 3KiB --state-max-bytes 10KiB
capped=$collector
# 3. Killed.
start_collector killed --state "$work/killed"
killed=$collector

start_leak main
leak_main=$started
start_leak capped
leak_capped=$started
start_leak killed
leak_killed=$started
begin_unix=$(date +%s)

sleep 5
kill -KILL "$killed"
sleep 7
kill -TERM "$leak_main" "$leak_capped" "$leak_killed"
wait_for "$work/main.log" "end .*verdict" 5 || fail "no end line for the leak"
wait_for "$work/capped.log" "end .*verdict" 5 || fail "no end line for the capped leak"
kill -TERM "$main" "$capped"
wait "$main"
rc=$?
[ "$rc" -eq 0 ] && passed=$((passed + 1)) || fail "collect exited $rc on SIGTERM"
wait "$capped"
cat "$work/main.log"

end_line=$(grep -E "end e2e_leak_per_request\[$leak_main\]" "$work/main.log")
live_slope=$(slope_bytes "$end_line")
live_censuses=$(grep -Eo '[0-9]+ censuses' <<< "$end_line" | grep -Eo '[0-9]+')
if grep -q "verdict drift (heap at record_audit_entry" <<< "$end_line" && [ -n "$live_slope" ]; then
  passed=$((passed + 1))
else
  fail "collect's end line has no drift at record_audit_entry: '$end_line'"
fi

process_dir=$(ls -d "$work"/state/e2e_leak_per_request-"$leak_main"-*)
mapfile -t segments < <(ls "$process_dir"/*.dwrec.zst)
echo "segments: ${#segments[@]} in $process_dir"
ls -l "$process_dir"
if [ "${#segments[@]}" -ge 3 ]; then passed=$((passed + 1)); else fail "fewer than 3 segments rolled"; fi

# (a) The process directory: one stream, exactly the live analysis.
check_report directory 0.999 1.001 "$process_dir"
if grep -q " $live_censuses censuses" "$work/directory.out" && ! [ -s "$work/directory.err" ]; then
  passed=$((passed + 1))
else
  cat "$work/directory.err"
  fail "the directory's replay does not count the live $live_censuses censuses, or warns"
fi
# (b) A middle segment alone (its key frame recreates the state).
check_report segment 0.6 1.6 "${segments[1]}"
if [ -s "$work/segment.err" ]; then cat "$work/segment.err"; fail "a middle segment warns"; fi
# (c) A window of 5 s in the middle of the run, in RFC 3339.
since=$(date -u -d "@$((begin_unix + 3))" +%Y-%m-%dT%H:%M:%SZ)
until=$(date -u -d "@$((begin_unix + 8))" +%Y-%m-%dT%H:%M:%SZ)
check_report window 0.6 1.6 --since "$since" --until "$until" "$process_dir"
window_censuses=$(grep -Eo '[0-9]+ censuses' "$work/window.out" | head -1 | grep -Eo '[0-9]+')
if [ -n "$window_censuses" ] && [ "$window_censuses" -ge 35 ] && [ "$window_censuses" -le 60 ]; then
  passed=$((passed + 1))
else
  fail "the window $since..$until holds '$window_censuses' censuses, not ~50"
fi
# (d) All of DIR, with a relative --since covering everything.
check_report all 0.999 1.001 --since -1h "$work/state"

# 2. The cap: the first segments are gone, the rest fits, and the newest still replays.
cat "$work/capped.log"
capped_dir=$(ls -d "$work"/capped/e2e_leak_per_request-*)
total=$(find "$work/capped" -name '*.dwrec.zst' -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
if ! ls "$capped_dir"/000000-* > /dev/null 2>&1 && [ "$total" -le 10240 ] &&
  grep -Eq "state: .* [1-9][0-9]* old segments deleted" "$work/capped.log"; then
  passed=$((passed + 1))
  echo "ok: capped: $total bytes in $(ls "$capped_dir" | wc -l) segments, the oldest deleted"
else
  ls -l "$capped_dir"
  fail "the cap did not delete the oldest segments or the files exceed it ($total > 10240 bytes)"
fi
newest=$(ls "$capped_dir"/*.dwrec.zst | tail -1)
"$driftwatch" report "$newest" > "$work/capped.out" 2>&1
rc=$?
if [ "$rc" -ne 2 ] && grep -Eq ": [1-9][0-9]* census" "$work/capped.out"; then
  passed=$((passed + 1))
else
  cat "$work/capped.out"
  fail "the newest capped segment does not replay"
fi

# 3. The killed collector: its last segment replays up to the last flush, with a warning.
last=$(ls "$work"/killed/*/*.dwrec.zst | tail -1)
"$driftwatch" report "$last" > "$work/killed.out" 2> "$work/killed.err"
rc=$?
cat "$work/killed.err"
if { [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; } && grep -q "warning: .*cut off" "$work/killed.err" &&
  grep -Eq "[1-9][0-9]* censuses" "$work/killed.out"; then
  passed=$((passed + 1))
else
  cat "$work/killed.out"
  fail "the killed collector's segment did not replay with a cut-off warning (exit $rc)"
fi

# Bad input: one line naming the file, exit 2.
printf 'DWREC1\n\0garbage' > "$work/bad.dwrec"
"$driftwatch" report "$work/bad.dwrec" > /dev/null 2> "$work/bad.err"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l < "$work/bad.err")" -eq 1 ] && grep -q "bad.dwrec: offset" "$work/bad.err"; then
  passed=$((passed + 1))
else
  cat "$work/bad.err"
  fail "a bad recording: exit $rc, not one line naming the file and offset with exit 2"
fi
finish
