#!/usr/bin/env bash
# run_case.sh: one case of the battery (tests/battery/cases/NAME.sh): a real Debian program run
# twice in the same fresh folder, bare and under `driftwatch run`. Its stdout, stderr, exit code
# (and, for servers, its clients' results) must be identical after the case's filters, which
# remove only what is truly nondeterministic (each filter says what); and the --json verdict
# must list the processes the case expects driftwatch to hear from.
#
# Usage: run_case.sh DRIFTWATCH CASE [KEEP_DIR]
#   DRIFTWATCH  the driftwatch binary (it finds the shim next to itself, or DRIFTWATCH_SHIM)
#   KEEP_DIR    if given, the outputs of both runs are copied there (for scripts/battery)
# Exit 0 when the case passes, 1 when it fails; the last line is a summary for scripts/battery:
#   RESULT <pass|fail> processes=<N> target_exit=<code> verdict=<verdict> note=<text>
set -u
driftwatch=$(realpath "$1")
case_name=$2
keep_dir=${3:-}
battery_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case_file=$battery_dir/cases/$case_name.sh
[ -f "$case_file" ] || { echo "run_case.sh: no case $case_name ($case_file)"; exit 2; }

# Debian's programs only (no pyenv shims or /usr/local), and the same environment both times.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TZ=UTC
inputs=$battery_dir/inputs

work=$(mktemp -d /tmp/dw-battery.XXXXXX)
# Servers drop to `nobody` and may serve files from here.
chmod 755 "$work"
out=$work/out run=$work/run
mkdir -p "$out" "$work/home"
export HOME=$work/home
server_pid=""
cleanup() {
  # The server runs in its own process group (setsid): the whole group goes, workers included.
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2> /dev/null
    sleep 0.5
    kill -KILL -- "-$server_pid" 2> /dev/null
  fi
  cleanup_case
  if [ -n "$keep_dir" ]; then
    mkdir -p "$keep_dir" && cp -r "$out/." "$keep_dir/" 2> /dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# free_port: a loopback TCP port nobody listens on.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# --- What a case may set (defaults) -------------------------------------------------------------
interval_ms=50          # a census every 50 ms, so that even short programs send several
timeout_s=60            # each run is killed after this (a stall is a failure)
expect_exit=0           # the bare run must exit with this, or the case tests nothing
expect_processes='>= 1' # jq comparison applied to the number of distinct pids driftwatch heard from
expect_in_stdout=""     # a fixed string the bare stdout must contain (sanity)
stdin_file=/dev/null    # relative to the run folder, or absolute
expected_failure=""     # a known defect that makes this case fail today (kept, reported as such)
server=()               # server cases: the server command; client() drives the load
command=()              # command cases: the command
prepare() { :; }        # makes the inputs in the run folder (the current folder)
post() { :; }           # prints what the run left behind (checksums, results); compared too
filter_out() { cat; }   # removes truly nondeterministic parts of stdout
filter_err() { cat; }   # ... of stderr
filter_client() { cat; } # ... of the client's output (server cases)
client() { :; }         # server cases: drives the server at 127.0.0.1:$port; bounded
cleanup_case() { :; }   # stops what prepare() started outside the run (always called at exit)
port=$(free_port) || { echo "FAIL: no free loopback port"; exit 1; }
export port run inputs
# shellcheck source=/dev/null
source "$case_file"
# scripts/battery --interval MS: every case at another census interval.
interval_ms=${DW_BATTERY_INTERVAL_MS:-$interval_ms}

failures=()
fail() {
  echo "FAIL: $case_name: $*"
  failures+=("$*")
}

fresh_run_dir() {
  rm -rf "$run" && mkdir -p "$run" && chmod 755 "$run"
  (cd "$run" && prepare) || fail "prepare failed"
}

# wait_port: until something accepts on $port, at most 15 s.
wait_port() {
  for _ in $(seq 150); do
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && return 0
    sleep 0.1
  done
  return 1
}

# stop_server PID: SIGTERM, then SIGKILL after 20 s (driftwatch symbolises before it exits); sets server_rc.
stop_server() {
  local pid=$1
  kill -TERM "$pid" 2> /dev/null
  for _ in $(seq 200); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null
  wait "$pid"
  server_rc=$?
  kill -KILL -- "-$pid" 2> /dev/null  # anything of its group left behind
  server_pid=""
}

# run_mode MODE: one run, bare or under driftwatch (MODE dw); leaves MODE.out, MODE.err,
# MODE.rc (the command's or server's own exit status as the shell sees it: 128+N for signal N),
# MODE.post, and for servers MODE.client and MODE.client_rc.
run_mode() {
  local mode=$1 prefix=()
  fresh_run_dir
  if [ "$mode" = dw ]; then
    prefix=("$driftwatch" run --interval "$interval_ms" --duration "$timeout_s"
            --json "$out/dw.json" --)
  fi
  local stdout=$out/$mode.out stderr=$out/$mode.err
  [ "$mode" = dw ] && stdout=$out/dw.raw stderr=$out/dw.rawerr
  if ((${#server[@]} > 0)); then
    # setsid without a fork (the subshell is no group leader): $! is the server, or driftwatch.
    (cd "$run" && exec setsid "${prefix[@]}" "${server[@]}" < /dev/null > "$stdout" 2> "$stderr") &
    server_pid=$!
    if wait_port; then
      export -f client
      (cd "$run" && timeout -k 5 "$timeout_s" bash -c client > "$out/$mode.client" 2>&1)
      echo $? > "$out/$mode.client_rc"
    else
      fail "$mode: the server never listened on 127.0.0.1:$port"
      echo none > "$out/$mode.client_rc"
      : > "$out/$mode.client"
    fi
    stop_server "$server_pid"
    echo "$server_rc" > "$out/$mode.rc"
  else
    (cd "$run" && exec timeout -k 5 "$((timeout_s + 10))" "${prefix[@]}" "${command[@]}" \
      < "$stdin_file" > "$stdout" 2> "$stderr")
    echo $? > "$out/$mode.rc"
  fi
  (cd "$run" && post) > "$out/$mode.post" 2>&1
}

# The target's exit status from driftwatch's report line ("exit N", "killed by SIGX"), as the
# shell would show it.
target_exit_from_report() {
  local line
  line=$(grep -m1 '^  command ran ' "$out/dw.report") || { echo unknown; return; }
  if [[ "$line" =~ killed\ by\ SIG([A-Z0-9]+) ]]; then
    echo $((128 + $(kill -l "${BASH_REMATCH[1]}")))
  elif [[ "$line" =~ killed\ by\ signal\ ([0-9]+) ]]; then
    echo $((128 + BASH_REMATCH[1]))
  elif [[ "$line" =~ ,\ exit\ ([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo unknown
  fi
}

compare() {  # what, bare file, dw file, filter
  local what=$1 a=$2 b=$3 filter=$4
  $filter < "$a" > "$a.f"
  $filter < "$b" > "$b.f"
  if ! cmp -s "$a.f" "$b.f"; then
    fail "$what differs (bare < > under driftwatch; after the filter):"
    diff "$a.f" "$b.f" | head -20
  fi
}

start_ns=$(date +%s%N)
run_mode bare
bare_rc=$(cat "$out/bare.rc")
if [ "$bare_rc" != "$expect_exit" ]; then
  fail "the bare run exited $bare_rc, expected $expect_exit (nothing to compare)"
  head -20 "$out/bare.err"
fi
if [ -n "$expect_in_stdout" ] && ! grep -qF -- "$expect_in_stdout" "$out/bare.out" "$out/bare.post"; then
  fail "the bare run's output lacks '$expect_in_stdout'"
fi
if ((${#server[@]} > 0)) && [ "$(cat "$out/bare.client_rc")" != 0 ]; then
  fail "the client failed against the bare server (exit $(cat "$out/bare.client_rc"))"
  head -20 "$out/bare.client"
fi

run_mode dw
dw_rc=$(cat "$out/dw.rc")
"$battery_dir/split_report.py" "$out/dw.raw" "$out/dw.out" "$out/dw.report" ||
  fail "no driftwatch report in its stdout (driftwatch exit $dw_rc)"
# driftwatch's own messages on stderr ("driftwatch: warning: ...") are not the target's; the
# shim's ("driftwatch[PID]: ...") are written into the target's stderr and so are compared.
grep -v '^driftwatch: ' "$out/dw.rawerr" > "$out/dw.err"
grep '^driftwatch: ' "$out/dw.rawerr" > "$out/dw.notes"
target_exit=$(target_exit_from_report)
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))

if [ "$dw_rc" = 124 ] || [ "$dw_rc" = 137 ]; then
  fail "driftwatch run was killed by the timeout ($timeout_s s): the target or driftwatch stalled"
fi
if ((${#server[@]} > 0)); then
  # Stopped by our SIGTERM, forwarded by driftwatch: the target's status is compared.
  [ "$target_exit" = "$bare_rc" ] ||
    fail "server exit: bare $bare_rc, under driftwatch $target_exit (driftwatch exit $dw_rc)"
  client_rc=$(cat "$out/dw.client_rc")
  [ "$client_rc" = "$(cat "$out/bare.client_rc")" ] ||
    fail "client exit: bare $(cat "$out/bare.client_rc"), against the server under driftwatch $client_rc"
  compare "client output" "$out/bare.client" "$out/dw.client" filter_client
else
  [ "$target_exit" = "$bare_rc" ] ||
    fail "exit code: bare $bare_rc, under driftwatch $target_exit (driftwatch exit $dw_rc)"
  # driftwatch's own code must agree: 3 exactly when the command failed; never 2 (set-up error).
  if [ "$bare_rc" != 0 ] && [ "$dw_rc" != 3 ]; then
    fail "driftwatch exit $dw_rc for a command that failed with $bare_rc (expected 3)"
  elif [ "$bare_rc" = 0 ] && { [ "$dw_rc" = 2 ] || [ "$dw_rc" = 3 ]; }; then
    fail "driftwatch exit $dw_rc for a command that succeeded"
  fi
fi
compare stdout "$out/bare.out" "$out/dw.out" filter_out
compare stderr "$out/bare.err" "$out/dw.err" filter_err
compare "files left behind" "$out/bare.post" "$out/dw.post" cat

processes=0 verdict=none
if [ -s "$out/dw.json" ]; then
  processes=$(jq '[.processes[].pid] | unique | length' "$out/dw.json")
  verdict=$(jq -r .verdict "$out/dw.json")
  jq -e "$processes $expect_processes" > /dev/null <<< null ||
    fail "driftwatch heard from $processes processes, expected $expect_processes"
  # A process of the run that driftwatch knows it missed, or a connection it refused, is a
  # process not heard from (fields of verdicts from 7b70b92 on; absent before).
  unheard=$(jq -c '[.unheard_processes // [] | .[] | "\(.pid) \(.exe): \(.reason)"]' "$out/dw.json")
  [ "$unheard" = "[]" ] || fail "driftwatch lists processes it did not hear from: $unheard"
  refused=$(jq -c '[.refused_connections // [] | .[]]' "$out/dw.json")
  [ "$refused" = "[]" ] || fail "driftwatch refused census connections: $refused"
  json_exit=$(jq -r '[.processes[] | select(.exit != null) | .exit.code // (128 + .exit.signal)]
                     | last // "none"' "$out/dw.json")
  if [ "$json_exit" != none ] && [ "$json_exit" != "$target_exit" ]; then
    fail "the JSON gives the command's exit as $json_exit, the report as $target_exit"
  fi
else
  fail "no --json verdict written"
fi

note=""
if ((${#failures[@]} > 0)); then
  if [ -n "$expected_failure" ]; then
    note="expected to pass after $expected_failure"
    echo "note: $case_name is $note"
  fi
  echo "--- driftwatch report:"
  head -40 "$out/dw.report"
  [ -s "$out/dw.notes" ] && { echo "--- driftwatch on stderr:"; head -10 "$out/dw.notes"; }
  result=fail
else
  echo "ok: $case_name: identical bare and under driftwatch (exit $bare_rc, $processes processes heard from, ${elapsed_ms} ms)"
  result=pass
fi
echo "RESULT $result processes=$processes target_exit=$target_exit verdict=$verdict note=$note"
[ "$result" = pass ]
