#!/usr/bin/env bash
# Collector faults: one fault per call, injected into a census_sink while fault_target reports to
# it under the real shim. Every fault requires the target's stdout byte-identical to a bare run,
# the same exit code, no stall (its slowest iteration under FAULTS_MAX_ITERATION_MS) and no
# delayed exit (from the end of main to the parent's wait, under FAULTS_MAX_EXIT_DELAY_MS); most
# also require that reporting comes back after the fault, with the gap visible to the sink.
#
# Usage: faults.sh FAULT SHIM SINK TARGET
#   FAULT: killed stopped unlinked collector_nofile target_nofile target_closefrom silent garbage
#          closing
# Environment: FAULTS_STOP_S (how long the collector stays stopped; 5 in CI, 60 in
# scripts/faults), FAULTS_RUN_S (how long the target runs in the other faults, default 6),
# FAULTS_MAX_ITERATION_MS (default 100: a hang detector, bare runs take ~0.1 ms),
# FAULTS_MAX_EXIT_DELAY_MS (default 300).
# Prints "ok: ..." / "FAIL: ..." lines and "measured: ..." lines with timings; exits 1 on failure.
set -u
fault=$1 shim=$2 sink=$3 target=$4
stop_s=${FAULTS_STOP_S:-5}
run_s=${FAULTS_RUN_S:-6}
max_iteration_ms=${FAULTS_MAX_ITERATION_MS:-100}
max_exit_delay_ms=${FAULTS_MAX_EXIT_DELAY_MS:-300}
interval_ms=100

work=$(mktemp -d /tmp/dw-faults.XXXXXX)
sock=$work/census.sock
started_pids=()
cleanup() {
  for pid in "${started_pids[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${FAULTS_KEEP:-}" = always ] || { [ "${failed:-0}" -ne 0 ] && [ -n "${FAULTS_KEEP:-}" ]; }; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
failed=0
fail() { echo "FAIL: $fault: $*"; failed=1; }
ok() { echo "ok: $fault: $*"; }
measured() { echo "measured: $fault: $*"; }
die() { echo "FAIL: $fault: $*"; failed=1; exit 1; }

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# start_sink NAME [MODE]: a sink on $sock logging to $work/NAME.log; sets sink_pid.
start_sink() {
  local name=$1 mode=${2:-normal}
  "$sink" --socket "$sock" --log "$work/$name.log" --mode "$mode" 2> "$work/$name.err" &
  sink_pid=$!
  started_pids+=("$sink_pid")
  for _ in $(seq 100); do
    grep -q '^listening' "$work/$name.log" 2>/dev/null && return 0
    sleep 0.05
  done
  die "sink $name did not start: $(cat "$work/$name.err")"
}

# bare MODE COUNT: the reference run (no shim, no sleeping: the output does not depend on it).
# With fd_limit set, under `ulimit -n $fd_limit`.
bare() {
  ( trap - EXIT
    [ -z "${fd_limit:-}" ] || ulimit -n "$fd_limit"
    exec "$target" "$1" "$2" 0 ) > "$work/bare.out" 2> "$work/bare.err"
  bare_rc=$?
  [ "$bare_rc" -eq 5 ] || die "bare run exited $bare_rc: $(head -3 "$work/bare.out" "$work/bare.err")"
}

# start_target NAME MODE COUNT SLEEP_US: the target under the shim, in the background; sets
# target_pid. Its stdout goes to NAME.out, its stderr to NAME.err. With fd_limit set, under
# `ulimit -n $fd_limit`.
start_target() {
  local name=$1; shift
  ( trap - EXIT
    [ -z "${fd_limit:-}" ] || ulimit -n "$fd_limit"
    LD_PRELOAD=$shim DRIFTWATCH_SOCKET=$sock DRIFTWATCH_INTERVAL_MS=${interval:-$interval_ms} \
      exec "$target" "$@" ) > "$work/$name.out" 2> "$work/$name.err" &
  target_pid=$!
  started_pids+=("$target_pid")
}

# watch PID [SECONDS]: kills PID if it still runs after SECONDS (180). The watchdog ends on its own within a second
# of PID (tail --pid polls once a second); it is never killed, since a subshell killed by a
# signal would run the EXIT trap.
watch() {
  ( trap - EXIT
    timeout "${2:-180}" tail --pid="$1" -f /dev/null || kill -9 "$1" ) > /dev/null 2>&1 &
}

# finish_target NAME PID [SECONDS]: waits for the target (killed after SECONDS, default 180) and
# checks it (check_target).
finish_target() {
  watch "$2" "${3:-180}"
  wait "$2"
  local rc=$?
  check_target "$1" "$rc" "$(now_us)"
}

# check_target NAME RC REAPED_US: checks output, exit code and latency against the bare run;
# sets exit_delay_ms (from the end of main to the parent's wait returning, at REAPED_US).
check_target() {
  local name=$1 rc=$2 reaped_us=$3
  [ "$rc" -ne 137 ] || { fail "$name: the target stalled (killed by the watchdog)"; return; }
  [ "$rc" -eq "$bare_rc" ] || fail "$name: exit code $rc, bare run gave $bare_rc"
  if ! cmp -s "$work/bare.out" "$work/$name.out"; then
    fail "$name: stdout differs from the bare run in $(diff "$work/bare.out" "$work/$name.out" |
      grep -c '^>') lines, first (< bare, > under the shim):"
    diff "$work/bare.out" "$work/$name.out" | grep '^[<>]' | awk '!seen[$1]++'
  fi
  local end_us max_us
  end_us=$(sed -n 's/.*end_realtime_us=\([0-9]*\).*/\1/p' "$work/$name.err")
  max_us=$(sed -n 's/.*max_iteration_us=\([0-9]*\).*/\1/p' "$work/$name.err")
  if [ -n "$end_us" ]; then
    exit_delay_ms=$(( (reaped_us - end_us) / 1000 ))
  else
    exit_delay_ms=-1
  fi
  if [ -n "$max_us" ] && [ "$max_us" -gt $((max_iteration_ms * 1000)) ]; then
    fail "$name: slowest iteration took ${max_us} us (bound ${max_iteration_ms} ms)"
  fi
  # The shim holds a few fds of its own (its socket, libunwind's pipe); more after reconnecting
  # is a leak, one per connection.
  local fds bare_fds
  fds=$(sed -n 's/.*open_fds=\([0-9]*\).*/\1/p' "$work/$name.err")
  bare_fds=$(sed -n 's/.*open_fds=\([0-9]*\).*/\1/p' "$work/bare.err")
  if [ -n "$fds" ] && [ -n "$bare_fds" ] && [ "$fds" -gt $((bare_fds + 4)) ]; then
    fail "$name: $fds fds open at the end, $bare_fds in the bare run"
  fi
  if [ "$exit_delay_ms" -gt "$max_exit_delay_ms" ]; then
    fail "$name: exit delayed by ${exit_delay_ms} ms (bound ${max_exit_delay_ms} ms)"
  fi
  measured "$name: $(head -1 "$work/$name.err"), exit delay ${exit_delay_ms} ms"
}

# censuses LOG PID: the census lines from PID.
censuses() { grep "^census .* pid=$2 " "$work/$1.log" 2>/dev/null; }

# wait_censuses LOG PID COUNT SECONDS: waits until LOG holds COUNT censuses from PID.
wait_censuses() {
  local deadline=$(( $(now_us) + $4 * 1000000 ))
  while [ "$(censuses "$1" "$2" | wc -l)" -lt "$3" ]; do
    [ "$(now_us)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

field() { sed -n "s/.* $1=\([0-9-]*\).*/\1/p"; }

# largest_gap LOG PID: the longest time between consecutive censuses, in ms, as "ms dropped",
# with the increase of the shim's own dropped-census count across that gap.
largest_gap() {
  censuses "$1" "$2" | awk '{
      for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
      t = v["realtime_ns"] / 1e6; d = v["dropped"]
      if (n++ && t - last > gap) { gap = t - last; gap_dropped = d - last_d }
      last = t; last_d = d
    } END { printf "%d %d\n", gap, gap_dropped }'
}

iterations=$((run_s * 1000))  # about 1.1 ms each with the 1 ms sleep

case $fault in
killed)
  bare steady "$iterations"
  start_sink first
  start_target shim steady "$iterations" 1000
  wait_censuses first "$target_pid" 5 20 || fail "no censuses before the kill"
  kill -9 "$sink_pid"; wait "$sink_pid" 2>/dev/null
  killed_us=$(now_us)
  sleep 0.5
  start_sink second
  if wait_censuses second "$target_pid" 3 20; then
    first_seq=$(censuses second "$target_pid" | head -1 | field seq)
    [ "$first_seq" = 0 ] && ok "the restarted sink hears the same pid again, sequence from 0" ||
      fail "the restarted sink's first census from the pid has sequence $first_seq, not 0"
    back_us=$(censuses second "$target_pid" | head -1 | field realtime_ns)
    measured "reporting back $(( (back_us / 1000 - killed_us) / 1000 )) ms after the kill"
  else
    fail "the restarted sink heard nothing from pid $target_pid in 20 s"
  fi
  finish_target shim "$target_pid"
  censuses second "$target_pid" | grep -q 'final=1' || fail "no final census after the restart"
  ;;
stopped)
  # The socket buffer (wmem_default) must fill while the sink is stopped, or no census is
  # dropped and there is no gap to see: ~180 censuses fill it, so a short stop takes 10 ms ticks.
  iterations=$(( (stop_s + run_s) * 1000 ))
  [ "$stop_s" -ge 30 ] && interval_ms=100 || interval_ms=10
  bare steady "$iterations"
  start_sink sink
  interval=$interval_ms start_target shim steady "$iterations" 1000
  wait_censuses sink "$target_pid" 5 20 || fail "no censuses before the stop"
  kill -STOP "$sink_pid"
  sleep "$stop_s"
  kill -CONT "$sink_pid"
  continued_ns=$(( $(now_us) * 1000 ))
  # Censuses taken after SIGCONT arrive: reporting resumed.
  deadline=$(( $(now_us) + 20000000 ))
  resumed=0
  while [ "$(now_us)" -lt "$deadline" ]; do
    last=$(censuses sink "$target_pid" | tail -1 | field realtime_ns)
    if [ -n "$last" ] && [ "$last" -gt "$continued_ns" ]; then resumed=1; break; fi
    sleep 0.1
  done
  [ "$resumed" -eq 1 ] && ok "censuses resume after SIGCONT" || fail "no census taken after SIGCONT arrived in 20 s"
  finish_target shim "$target_pid"
  read -r gap_ms gap_dropped < <(largest_gap sink "$target_pid")
  measured "largest gap between censuses ${gap_ms} ms, censuses dropped across it ${gap_dropped}"
  # A hole in the census times must be a declared one: the shim counts the censuses it dropped.
  if [ "$gap_ms" -gt $((3 * interval_ms)) ] && [ "$gap_dropped" -lt 1 ]; then
    fail "a ${gap_ms} ms hole in the census times with no census counted as dropped"
  fi
  [ "$gap_ms" -ge $((stop_s * 1000 / 2)) ] ||
    fail "no gap in the census times (largest ${gap_ms} ms): the buffer never filled, fault not exercised"
  censuses sink "$target_pid" | grep -q 'final=1' || fail "no final census after the stop"
  ;;
unlinked)
  bare steady "$iterations"
  start_sink first
  first_pid=$sink_pid
  start_target shim steady "$iterations" 1000
  wait_censuses first "$target_pid" 3 20 || fail "no censuses before the unlink"
  rm "$sock"
  before=$(censuses first "$target_pid" | wc -l)
  wait_censuses first "$target_pid" $((before + 3)) 10 && ok "the connection outlives its path" ||
    fail "censuses stopped when the socket path was removed"
  sleep 0.5
  start_sink second
  sleep 0.5
  kill -TERM "$first_pid"; wait "$first_pid"
  stopped_us=$(now_us)
  if wait_censuses second "$target_pid" 3 20; then
    first_seq=$(censuses second "$target_pid" | head -1 | field seq)
    [ "$first_seq" = 0 ] && ok "reconnects to the new sink on the path" ||
      fail "first census on the new sink has sequence $first_seq"
    back_us=$(censuses second "$target_pid" | head -1 | field realtime_ns)
    measured "reporting back $(( (back_us / 1000 - stopped_us) / 1000 )) ms after the old sink ended"
  else
    fail "the new sink on the path heard nothing in 20 s"
  fi
  finish_target shim "$target_pid"
  ;;
collector_nofile)
  # The sink can hold 7 connections (12 fds less 0-2, its log, its listener) and queue 4 more;
  # 20 targets connect at once.
  bare steady "$iterations"
  ( trap - EXIT; ulimit -n 12; exec "$sink" --socket "$sock" --log "$work/sink.log" --backlog 4 ) 2> "$work/sink.err" &
  sink_pid=$!; started_pids+=("$sink_pid")
  for _ in $(seq 100); do grep -q '^listening' "$work/sink.log" 2>/dev/null && break; sleep 0.05; done
  declare -A name_of pid_of
  for n in $(seq 20); do
    start_target "shim$n" steady "$iterations" 1000
    name_of[$target_pid]=shim$n
    pid_of[shim$n]=$target_pid
    watch "$target_pid"
  done
  # Reaped in the order they end, and checked afterwards, so that each exit delay is the
  # target's own.
  declare -A rc_of reaped_of
  for _ in $(seq 20); do
    wait -n -p done_pid "${!name_of[@]}"
    rc_of[$done_pid]=$?
    reaped_of[$done_pid]=$(now_us)
    unset "name_of[$done_pid]"
  done
  delays=
  for n in $(seq 20); do
    done_pid=${pid_of[shim$n]}
    check_target "shim$n" "${rc_of[$done_pid]}" "${reaped_of[$done_pid]}" > "$work/check.txt"
    grep FAIL "$work/check.txt" && failed=1
    delays+=" $exit_delay_ms"
  done
  heard=$(grep -c '^hello' "$work/sink.log")
  grep -q '^accept_failed errno=24' "$work/sink.log" || fail "the sink never ran out of fds: fault not exercised"
  [ "$heard" -ge 1 ] || fail "the sink heard no target at all"
  read -r _ _ _ _ _ _ _ _ _ _ _ _ _ utime stime _ < "/proc/$sink_pid/stat"
  measured "20 targets, sink heard $heard; sink cpu $(( (utime + stime) * 10 )) ms; exit delays (ms):$delays"
  ;;
target_nofile)
  # The target takes every fd its limit allows and holds them across census ticks.
  fd_limit=64
  bare nofile 10
  start_sink sink
  start_target shim nofile 10 150000
  finish_target shim "$target_pid"
  count=$(censuses sink "$target_pid" | wc -l)
  measured "$count censuses arrived during the 3 s run"
  [ "$count" -ge 3 ] || fail "only $count censuses arrived: reporting lost"
  # The process never has fewer than 3 fds: a census saying 0 reports a failure as a figure.
  zero=$(censuses sink "$target_pid" | grep -c ' fds=0 ')
  [ "$zero" -eq 0 ] || fail "$zero of $count censuses say the process has 0 fds open"
  ;;
target_closefrom)
  # The target closes every fd from 3 up, as daemons and process spawners do, then makes pipes
  # (they get the lowest numbers back) and allocates. Whatever the shim held there is gone: it
  # must neither read, write, close nor take the target's new fds. Whether it does depends on
  # the addresses its unwinder checks (about half the runs with libunwind 1.6), so 4 runs
  # without a limit and 4 under a limit of 64 fds (where the shim's descriptors cannot be far
  # from the target's), each with a 10 s watchdog where a bare run takes 0.5 s.
  start_sink sink
  for fd_limit in "" 64; do
    bare closefrom 20
    for n in $(seq 4); do
      start_target "shim$n${fd_limit:+_limit$fd_limit}" closefrom 20 20000
      finish_target "shim$n${fd_limit:+_limit$fd_limit}" "$target_pid" 10
      [ "$failed" -eq 0 ] || break 2
    done
  done
  ;;
silent)
  # Accepts, never reads until it is told to stop: the socket buffer fills at a 10 ms interval.
  bare steady "$iterations"
  start_sink sink silent
  interval=10 start_target shim steady "$iterations" 1000
  finish_target shim "$target_pid"
  kill -TERM "$sink_pid"; wait "$sink_pid"
  queued=$(censuses sink "$target_pid" | wc -l)
  measured "$queued censuses of about $((run_s * 100)) queued before the buffer filled"
  # The final census fits only if the buffer never filled: then nothing was tested.
  ! censuses sink "$target_pid" | grep -q 'final=1' ||
    fail "the final census was queued: the buffer never filled, fault not exercised"
  ;;
garbage)
  bare steady "$iterations"
  start_sink sink garbage
  start_target shim steady "$iterations" 1000
  finish_target shim "$target_pid"
  count=$(censuses sink "$target_pid" | wc -l)
  [ "$count" -ge $((run_s * 5)) ] && ok "$count censuses arrived despite the garbage" ||
    fail "only $count censuses arrived"
  censuses sink "$target_pid" | grep -q 'final=1' || fail "no final census"
  ;;
closing)
  bare steady "$iterations"
  start_sink sink close
  start_target shim steady "$iterations" 1000
  finish_target shim "$target_pid"
  opens=$(grep -c '^open' "$work/sink.log")
  measured "$opens connections in ${run_s} s at a ${interval_ms} ms interval"
  # Reconnecting is fine; reconnecting faster than once an interval is a busy loop.
  [ "$opens" -le $((run_s * 1000 / interval_ms + 20)) ] || fail "$opens connections: reconnect loop"
  ;;
*)
  die "unknown fault $fault"
  ;;
esac

[ "$failed" -eq 0 ] && echo "PASS: $fault" || echo "FAILED: $fault"
exit "$failed"
