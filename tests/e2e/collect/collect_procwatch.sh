#!/usr/bin/env bash
# `driftwatch collect --pid/--match` on real programs the shim cannot enter, watched through /proc:
#   static C (--pid, no socket): a pipe leak drifts on "total fds/pipes" and ends with a drift
#     verdict, a steady program ends steady, and collect exits 0 on its own once both ended;
#   as root, a collector running as nobody watches a root program: /proc/PID/fd is unreadable
#     (said once), its thread leak is still found ("total threads") from /proc/PID/stat;
#   Go, built without cgo (--match, with a socket): a socket leak drifts on "total fds/sockets", a
#     thread leak on "total threads", both by their command name; a program of the same name
#     started again is a new series; a dynamically linked program under the shim that --match
#     also names is reported once, by its connection (connect line, no watch line), and once in
#     --metrics, where the Go programs' totals are exported too;
#   a --pid that is not a process exits 2 naming it.
# Usage: collect_procwatch.sh DRIFTWATCH STATIC_TARGET GO_TARGET|"" SHIM_PROGRAM
set -u
driftwatch=$1 static_target=$2 go_target=$3 shim_program=$4
seconds=0
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# expect_line FILE PATTERN SECONDS MESSAGE: until a line of FILE matches the extended regex
# PATTERN; counts a pass, or fails with the log.
expect_line() {
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2> /dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "--- $1:"; cat "$1"
      fail "$4"
      return 1
    fi
    sleep 0.2
  done
  passed=$((passed + 1))
}
# expect_none FILE PATTERN MESSAGE
expect_none() {
  if grep -Eq -- "$2" "$1"; then echo "--- $1:"; cat "$1"; fail "$3"; else passed=$((passed + 1)); fi
}
# start NAME PROGRAM ARGS...: PROGRAM in the background as $work/NAME (its command name), once
# it runs (the shell's child has exec'd it).
start() {
  local name=$1 program=$2
  shift 2
  [ -e "$work/$name" ] || cp "$program" "$work/$name"
  "$work/$name" "$@" &
  started=$!
  pids+=("$started")
  for _ in $(seq 100); do
    [ "$(readlink "/proc/$started/exe")" = "$work/$name" ] && break
    sleep 0.01
  done
}

watch_args=(--watch-every 0.2 --check-every 1)

# --- A pid that is not a process: exit 2 naming it.
sleep 0 & gone=$!
wait "$gone"
"$driftwatch" collect --pid "$gone" > "$work/gone.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--pid $gone: no process $gone" "$work/gone.out"; then
  passed=$((passed + 1))
else cat "$work/gone.out"; fail "collect --pid of no process: exit $rc"; fi

# --- Static C, --pid, no socket; and (as root) a collector without the rights to list fds.
start leaky_static "$static_target" pipes 100 7
leaky=$started
start calm_static "$static_target" steady 100 7
calm=$started
"$driftwatch" collect --pid "$leaky" --pid "$calm" "${watch_args[@]}" --log "$work/static.log" &
static_collector=$!
pids+=("$static_collector")
denied_collector=""
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null && id nobody > /dev/null 2>&1; then
  start threads_static "$static_target" threads 100 7
  threads_pid=$started
  touch "$work/denied.log" && chown nobody "$work/denied.log"
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$driftwatch" collect --pid "$threads_pid" \
    "${watch_args[@]}" --log "$work/denied.log" &
  denied_collector=$!
  pids+=("$denied_collector")
fi
expect_line "$work/static.log" "watch leaky_static\[$leaky\] exe=$work/leaky_static started=.* by --pid" \
  5 "no watch line for the static leak"
expect_line "$work/static.log" "watch calm_static\[$calm\] " 5 "no watch line for the steady program"
expect_line "$work/static.log" "drift-start leaky_static\[$leaky\] total fds/pipes: \+[0-9.]+k?/h" 12 \
  "no drift-start on total fds/pipes for the pipe leak"
expect_line "$work/static.log" "end leaky_static\[$leaky\] after [0-9]+s, [0-9]+ samples: verdict drift \(total fds/pipes" \
  10 "no end line with a drift verdict for the pipe leak"
expect_line "$work/static.log" "end calm_static\[$calm\] after .*: verdict steady$" 5 \
  "the steady static program did not end steady"
expect_none "$work/static.log" "drift-start calm_static" "the steady program was said to drift"
# Nothing left to watch without a socket or --match: it ends by itself.
for _ in $(seq 50); do kill -0 "$static_collector" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$static_collector" 2> /dev/null; then fail "collect did not end with its last --pid"
else
  wait "$static_collector"
  rc=$?
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else fail "collect --pid exited $rc"; fi
fi
if [ -n "$denied_collector" ]; then
  expect_line "$work/denied.log" "watch threads_static\[$threads_pid\]: /proc/$threads_pid/fd is not readable" \
    1 "an unreadable fd directory was not said"
  expect_line "$work/denied.log" "drift-start threads_static\[$threads_pid\] total threads: \+" 5 \
    "the thread leak was not found from /proc/PID/stat without the fds"
  if [ "$(grep -c "fd is not readable" "$work/denied.log")" -eq 1 ]; then passed=$((passed + 1))
  else cat "$work/denied.log"; fail "the unreadable fd directory was said more than once"; fi
else
  echo "skip: a collector without the rights to list fds (needs root, setpriv and nobody)"
fi

# --- Go (static, no cgo), --match with a socket, next to a program under the shim.
if [ -z "$go_target" ]; then
  echo "skip: Go programs (go not installed at configure time)"
  finish
  exit
fi
socket=$work/census.sock
log=$work/go.log
"$driftwatch" collect --socket "$socket" --match gosvc --match "$(basename "$shim_program")" \
  "${watch_args[@]}" --metrics 127.0.0.1:0 --log "$log" &
collector=$!
pids+=("$collector")
expect_line "$log" "listening on $socket" 5 "collect did not start listening" || { finish; exit; }
start gosvc "$go_target" sockets 100 10
go_sockets=$started
start gosvc "$go_target" threads 100 10
go_threads=$started
start gosvc "$go_target" steady 100 4
go_short=$started
(
  eval "$("$driftwatch" env --socket "$socket" --interval 100)" || exit 1
  exec "$shim_program"
) &
under_shim=$!
pids+=("$under_shim")
expect_line "$log" "watch gosvc\[$go_sockets\] exe=$work/gosvc .* by --match gosvc" 5 \
  "no watch line for the Go socket leak by its name"
expect_line "$log" "watch gosvc\[$go_threads\] " 5 "no watch line for the Go thread leak"
expect_line "$log" "connect $(basename "$shim_program")\[$under_shim\] " 5 \
  "no connect line for the program under the shim"
expect_line "$log" "drift-start gosvc\[$go_sockets\] total fds/sockets: \+" 10 \
  "no drift-start on total fds/sockets for the Go socket leak"
expect_line "$log" "drift-start gosvc\[$go_threads\] total threads: \+" 10 \
  "no drift-start on total threads for the Go thread leak"
# /metrics (while the leaks run): the watched processes' totals, the program under the shim once.
port=$(sed -nE 's|.*metrics on http://127.0.0.1:([0-9]+)/metrics.*|\1|p' "$log")
curl -s "http://127.0.0.1:$port/metrics" > "$work/metrics.txt"
check_metric() {  # PATTERN COUNT MESSAGE
  local count
  count=$(grep -cE -- "$1" "$work/metrics.txt")
  if [ "$count" -eq "$2" ]; then passed=$((passed + 1))
  else grep -E "^driftwatch_process_(open_fds|threads|resident)" "$work/metrics.txt"; fail "$3 ($count lines)"; fi
}
check_metric "^driftwatch_process_open_fds\{comm=\"gosvc\",pid=\"$go_sockets\",.*\} [1-9][0-9]+$" 1 \
  "/metrics has no open_fds of the Go socket leak"
check_metric "^driftwatch_process_threads\{comm=\"gosvc\",pid=\"$go_threads\",.*\} [1-9][0-9]+$" 1 \
  "/metrics has no threads of the Go thread leak"
check_metric "^driftwatch_process_resident_memory_bytes\{comm=\"$(basename "$shim_program")\",pid=\"$under_shim\"" 1 \
  "/metrics does not list the program under the shim exactly once"
expect_line "$log" "watch gosvc\[$go_short\] " 5 "no watch line for the short Go program"
expect_line "$log" "end gosvc\[$go_short\] after .*: verdict" 6 \
  "no end line for the short Go program"
start gosvc "$go_target" steady 100 15
go_again=$started
expect_line "$log" "watch gosvc\[$go_again\] " 5 \
  "a program of the same name started again was not watched as a new series"
expect_line "$log" "end gosvc\[$go_sockets\] after .*: verdict drift \(.*total fds/sockets" 10 \
  "no end line with a drift verdict for the Go socket leak"
expect_line "$log" "end gosvc\[$go_threads\] after .*: verdict drift \(.*total threads" 5 \
  "no end line with a drift verdict for the Go thread leak"
expect_none "$log" "drift-start gosvc\[$go_threads\] total fds" "the thread leak was said to leak fds"
expect_none "$log" "drift-start gosvc\[$go_sockets\] total threads" \
  "the socket leak was said to leak threads"
expect_none "$log" "watch $(basename "$shim_program")\[$under_shim\]" \
  "a process under the shim was also watched through /proc (counted twice)"
kill -TERM "$collector"
wait "$collector"
rc=$?
if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else fail "collect exited $rc on SIGTERM"; fi
expect_line "$log" "running gosvc\[$go_again\] at exit, after .* samples: verdict" 1 \
  "no final line for the live Go program"
echo "--- the logs:"; cat "$work/static.log" "$log"
[ -n "$denied_collector" ] && cat "$work/denied.log"
finish
