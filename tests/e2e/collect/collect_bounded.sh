#!/usr/bin/env bash
# Does `driftwatch collect` stay bounded while processes come and go? The CI-sized version of
# bench/collect_soak (issue 11: "its memory stays bounded across thousands of process lifetimes").
#
# The collector runs under `driftwatch run --mode exact`, so driftwatch judges the collector's own
# heap with every block attributed, while, under the shim and sending to it, a steady service runs
# throughout, a leaking service restarts every second and short commands come and go (1000+
# lifetimes). Checks:
#   - the collector's verdict on itself is steady: no site of its heap, fds or threads keeps
#     growing faster than a heap budget of 1 MiB/h. A collector that kept 0.5 KiB per lifetime
#     at 20 lifetimes a second grows 36 MiB/h at one site (an unbounded ended history was
#     measured at +48.7 MiB/h). The budget lets a cache that is still filling pass: the
#     symbolizer's per-image frame cache, bounded by the code of at most 64 images, was once
#     found growing +30 KiB/h in the 45 s measured here;
#   - its anonymous RSS (its own memory; file-backed pages of the images it reads are the page
#     cache's) grows by less than MAX_KIB_PER_1000 per 1000 lifetimes after a warm-up of
#     WARMUP lifetimes (the history of ended processes is kept short here, so it is full by then);
#   - every lifetime was concluded (an end line each) and the collector exited 0 on SIGTERM.
# Usage: collect_bounded.sh DRIFTWATCH LEAK_PER_REQUEST BOUNDED_CHURN
# Environment: SECONDS_MEASURED (after the warm-up, default 45), MIN_LIFETIMES (in that time,
# default 1000), MAX_KIB_PER_1000 (default 1024).
set -u
driftwatch=$1 leak=$2 steady=$3
seconds=0  # verdict_lib.sh's run_soak is not used here
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"
warmup=300
measured=${SECONDS_MEASURED:-45}
min_lifetimes=${MIN_LIFETIMES:-1000}
max_kib_per_1000=${MAX_KIB_PER_1000:-1024}

socket=$work/census.sock
log=$work/collect.log
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null; done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$driftwatch" run --mode exact --interval 500 --duration 150 --budget heap=1MiB/h \
  --json "$work/verdict.json" -- \
  "$driftwatch" collect --socket "$socket" --check-every 1 --keep-ended 100 --log "$log" \
  > "$work/run.out" 2>&1 &
run_pid=$!
pids+=("$run_pid")
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
collector=$(pgrep -n -f "collect --socket $socket")
if [ ! -S "$socket" ] || [ -z "$collector" ]; then
  cat "$work/run.out"
  fail "the collector did not start"
  finish
  exit
fi

ended() { grep -c ' end ' "$log" 2> /dev/null || true; }
rss_anon_kib() { awk '/^RssAnon/ {print $2}' "/proc/$collector/status"; }

# The workload, under the shim: one steady service, a leak restarted every second, and two
# loops of short commands. Each loop ends its own background jobs on SIGTERM.
(
  trap 'kill $(jobs -p) 2> /dev/null; exit 0' TERM
  eval "$("$driftwatch" env --socket "$socket" --interval 100)" || exit 1
  "$steady" &
  while :; do
    "$leak" 64 &
    sleep 1
    kill "$!"
    wait "$!" 2> /dev/null
  done
) &
pids+=("$!")
for _ in 1 2; do
  (
    trap 'exit 0' TERM
    eval "$("$driftwatch" env --socket "$socket" --interval 100)" || exit 1
    while :; do
      sh -c true
      ls / > /dev/null
      sort < /dev/null
      sleep 0.05
    done
  ) &
  pids+=("$!")
done

# The warm-up: WARMUP lifetimes (30 s at most), then SECONDS_MEASURED seconds measured.
start=$SECONDS
while [ "$(ended)" -lt "$warmup" ] && [ $((SECONDS - start)) -lt 30 ]; do sleep 0.5; done
base_lifetimes=$(ended) base_rss=$(rss_anon_kib) base_time=$SECONDS
sleep "$measured"
end_lifetimes=$(ended) end_rss=$(rss_anon_kib) end_time=$SECONDS

# Stop the workload, then the collector; `run` ends with it and says its verdict.
for pid in "${pids[@]:1}"; do kill "$pid" 2> /dev/null; done
for pid in "${pids[@]:1}"; do wait "$pid" 2> /dev/null; done
sleep 1  # the last lifetimes are concluded
kill -TERM "$collector"
wait "$run_pid"
rc=$?

seen=$((end_lifetimes - base_lifetimes))
echo "lifetimes: $base_lifetimes at warm-up (${base_time}s), $end_lifetimes at the end" \
  "(${end_time}s); RssAnon $base_rss -> $end_rss KiB"
if [ "$base_lifetimes" -ge "$warmup" ] && [ "$seen" -ge "$min_lifetimes" ]; then
  passed=$((passed + 1))
else
  fail "too few lifetimes: $base_lifetimes in the warm-up (wanted $warmup), $seen in" \
    "${measured}s after it (wanted $min_lifetimes)"
fi
if [ "$seen" -gt 0 ]; then
  growth=$(((end_rss - base_rss) * 1000 / seen))
  echo "RssAnon growth: $growth KiB per 1000 lifetimes (bound $max_kib_per_1000)"
  if [ "$growth" -le "$max_kib_per_1000" ]; then
    passed=$((passed + 1))
  else
    fail "the collector's RssAnon grew $growth KiB per 1000 lifetimes (bound $max_kib_per_1000)"
  fi
fi
if [ "$rc" -eq 0 ] && jq -e '.verdict == "steady" and
    ([.processes[].findings[] | select(.status == "drifting")] | length == 0)' \
    "$work/verdict.json" > /dev/null; then
  passed=$((passed + 1))
else
  cat "$work/run.out"
  fail "driftwatch run judged the collector: exit $rc, not steady"
fi
if grep -q '^.* stopped: ' "$log"; then
  passed=$((passed + 1))
else
  tail -5 "$log"
  fail "the collector did not stop cleanly on SIGTERM"
fi
finish
