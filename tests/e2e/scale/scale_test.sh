#!/usr/bin/env bash
# scale_test.sh DRIFTWATCH MANY_STACKS: a program with 150k distinct stacks, nearly all of them
# changing in every census, watched by `driftwatch run` (issue 10, "Scale with the number of
# stacks"). Asserts:
#   1. a census arrives every interval: at least (run seconds - 2) censuses in the recording
#      (one interval before the first, one of slack for the final one cut short by SIGTERM);
#   2. after the first census the stream carries at most 64 bytes per changed site;
#   3. the collector holds at most 2 KiB per site: driftwatch's peak RSS (VmHWM) while the
#      target runs, divided by the sites, sampled from /proc;
#   4. the verdict still names the leak (one path in 64 keeps a block per walk), though half the
#      stacks go quiet with nothing live halfway through (their series are compacted).
set -euo pipefail

driftwatch=$1
program=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stacks=150000
seconds=16
fail=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what" >&2; fail=1; fi
}

"$driftwatch" run --duration "$seconds" --record "$work/rec" --json "$work/verdict.json" \
  -- "$program" "$stacks" 100 8 >"$work/out" 2>&1 &
collector=$!
target=
for _ in $(seq 100); do
  target=$(pgrep -n -P "$collector" || true)
  [[ -n $target ]] && break
  sleep 0.1
done
# VmHWM of the collector, sampled while the target runs.
hwm_kb=0
while kill -0 "$collector" 2>/dev/null && [[ -n $target && -d /proc/$target ]]; do
  kb=$(awk '/^VmHWM/ {print $2}' /proc/"$collector"/status 2>/dev/null || true)
  hwm_kb=${kb:-$hwm_kb}
  sleep 0.2
done
status=0
wait "$collector" || status=$?
cat "$work/out"

python3 "$here/stream_stats.py" "$work/rec" >"$work/stats"
cat "$work/stats"
censuses=$(wc -l <"$work/stats")
read -r later_bytes later_changed < <(awk 'NR > 1 {b += $4; c += $6} END {print b + 0, c + 0}' \
  "$work/stats")
defined=$(awk '{d += $8} END {print d + 0}' "$work/stats")
echo "censuses $censuses, stacks defined $defined, collector VmHWM ${hwm_kb} kB"

check "the program made 100k+ distinct stacks ($defined)" test "$defined" -ge 100000
check "a census every interval: $censuses censuses in $seconds s" test "$censuses" -ge $((seconds - 2))
check "at most 64 bytes per changed site after the first census ($later_bytes bytes, $later_changed changes)" \
  test "$later_changed" -gt 0 -a "$later_bytes" -le $((later_changed * 64))
check "collector at most 2 KiB per site (VmHWM $hwm_kb kB for $defined sites)" \
  test $((hwm_kb * 1024)) -le $((defined * 2048))
check "the verdict names the leak (exit $status, expected 1: drift)" test "$status" -eq 1
exit "$fail"
