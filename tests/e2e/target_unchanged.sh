#!/usr/bin/env bash
# The shim must not change what the target does, and must not stall it, whatever the collector
# does. Runs one deterministic program bare and under the shim in three situations and requires
# byte-identical stdout and the same exit code each time:
#   - no collector listening (the socket path does not exist),
#   - a hostile collector that accepts and never reads,
#   - under `driftwatch run`.
# Usage: target_unchanged.sh SHIM DRIFTWATCH PROGRAM SILENT_COLLECTOR
set -u
shim=$1 driftwatch=$2 program=$3 silent=$4
work=$(mktemp -d)
trap 'kill $collector_pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$program" > "$work/bare.out" 2> "$work/bare.err"
bare_rc=$?
[ "$bare_rc" -eq 7 ] || fail "bare run exited $bare_rc, expected 7"

check() {  # name, then the command prefix
  local name=$1; shift
  timeout 120 "$@" "$program" > "$work/$name.out" 2> "$work/$name.err"
  local rc=$?
  [ "$rc" -ne 124 ] || fail "$name: the target stalled (killed after 120 s)"
  [ "$rc" -eq "$bare_rc" ] || fail "$name: exit code $rc, bare run gave $bare_rc"
  cmp -s "$work/bare.out" "$work/$name.out" || { diff "$work/bare.out" "$work/$name.out"; fail "$name: stdout differs"; }
  grep -q "stderr line" "$work/$name.err" || fail "$name: target's stderr lost"
  echo "ok: $name"
}

check no_collector env LD_PRELOAD="$shim" DRIFTWATCH_SOCKET="$work/nobody-listens.sock" \
  DRIFTWATCH_INTERVAL_MS=10

"$silent" "$work/silent.sock" 200 &
collector_pid=$!
for _ in $(seq 50); do [ -S "$work/silent.sock" ] && break; sleep 0.1; done
check hostile_collector env LD_PRELOAD="$shim" DRIFTWATCH_SOCKET="$work/silent.sock" \
  DRIFTWATCH_INTERVAL_MS=10

# Under driftwatch run the exit code seen is driftwatch's (3: the command failed with 7), so
# only the target's output is compared here.
timeout 120 "$driftwatch" run --interval 50 -- "$program" > "$work/run.out" 2> "$work/run.err"
rc=$?
[ "$rc" -eq 3 ] || fail "driftwatch run: exit code $rc, expected 3 (the target exits 7)"
# The target writes first (it has exited before driftwatch prints its report).
head -c "$(wc -c < "$work/bare.out")" "$work/run.out" | cmp -s - "$work/bare.out" ||
  fail "driftwatch run: the target's stdout is not intact"
echo "ok: driftwatch_run"
echo "1 passed, 0 failed"
