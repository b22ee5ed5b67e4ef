#!/usr/bin/env bash
# `driftwatch collect` on real programs under the real shim, set up as the README says (eval
# "$(driftwatch env --socket ...)"): a leaking program, started through a symlink named
# audit-service (as redis-server is a symlink to redis-check-rdb) and a steady one connect, each
# named by its command name; the leak's
# drift-start line names record_audit_entry; the leak ends with a drift verdict and, restarted,
# is a new series (another pid, its own connect line) while the steady one runs on; SIGHUP
# reopens the log after a rotation; SIGTERM says where the live processes stand, exits 0 and
# removes the socket.
# As root, a leak whose binary exists only in its own mount namespace (as in a container) is
# symbolised through /proc/PID/root. As root, a program that drops root with capset (its census thread steps aside twice and comes
# back on new connections) is one process: one connect line, one end line.
# Usage: collect_canary.sh DRIFTWATCH LEAK_PER_REQUEST BOUNDED_CHURN DROP_PRIVILEGES
set -u
driftwatch=$1 leak=$2 steady=$3 drop_privileges=$4
seconds=0  # verdict_lib.sh's run_soak is not used here
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

socket=$work/census.sock
log=$work/collect.log
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PATTERN SECONDS: until a line of FILE matches the extended regex PATTERN.
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2> /dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# expect_line FILE PATTERN SECONDS MESSAGE: counts a pass, or fails with the log.
expect_line() {
  if wait_for "$1" "$2" "$3"; then
    passed=$((passed + 1))
    return 0
  fi
  echo "--- $1:"
  cat "$1"
  fail "$4"
  return 1
}

# Programs started from a shell that evaluated `driftwatch env` (censuses every 100 ms, sampled
# every 16 KiB so that the leak of 64 KiB/s gives ~4 samples a second).
start_under_shim() {
  (
    eval "$("$driftwatch" env --socket "$socket" --interval 100 --sample-bytes 16KiB)" || exit 1
    exec "$@"
  ) &
  started=$!
  pids+=("$started")
}

# As root: processes of another user are admitted only when allowed (daemon here), others are
# refused and logged (nobody). The socket's directory must let them reach it.
as_root=0
allow=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null && id daemon > /dev/null 2>&1 &&
  id nobody > /dev/null 2>&1; then
  as_root=1
  allow=(--allow-user daemon)
  chmod 711 "$work"
fi

# start_as USER GROUP PROGRAM...: PROGRAM as USER under the shim. setpriv itself runs without it
# (its setresgid aborts in a process with the census thread: glibc's setxid_error), the shim is
# preloaded into PROGRAM only.
start_as() {
  local user=$1 group=$2
  shift 2
  (
    eval "$("$driftwatch" env --socket "$socket" --interval 100 --sample-bytes 16KiB)" || exit 1
    preload=$LD_PRELOAD
    unset LD_PRELOAD
    exec setpriv --reuid="$user" --regid="$group" --clear-groups env LD_PRELOAD="$preload" "$@"
  ) &
  started=$!
  pids+=("$started")
}

"$driftwatch" collect --socket "$socket" --check-every 1 --log "$log" "${allow[@]}" &
collector=$!
pids+=("$collector")
expect_line "$log" "listening on $socket" 5 "collect did not start listening" || { finish; exit; }

service=$work/audit-service
ln -s "$leak" "$service"
start_under_shim "$service" 64
leak1=$started
start_under_shim "$steady"
steady1=$started

expect_line "$log" "connect audit-service\[$leak1\] exe=$leak started=" 5 \
  "no connect line for the leaking program, by its command name"
expect_line "$log" "connect e2e_bounded_churn\[$steady1\] " 5 \
  "no connect line for the steady program"
expect_line "$log" "drift-start audit-service\[$leak1\] heap at record_audit_entry \(.*leak_per_request.c:[0-9]+\): \+[0-9.]+ [KM]iB/h" \
  15 "no drift-start line naming record_audit_entry with its slope"

# The leak ends: its lifetime is concluded with its verdict.
kill -TERM "$leak1"
expect_line "$log" "end audit-service\[$leak1\] after [0-9].*censuses: verdict drift \(heap at record_audit_entry" \
  5 "no end line with a drift verdict for the leak"

# Restarted: a new series with its own connect line; the ended one is not reopened.
start_under_shim "$service" 64
leak2=$started
expect_line "$log" "connect audit-service\[$leak2\] " 5 \
  "the restarted program has no connect line of its own"

if [ "$as_root" -eq 1 ]; then
  start_as daemon daemon "$steady"
  allowed=$started
  start_as nobody nogroup "$steady"
  stranger=$started
  expect_line "$log" "connect e2e_bounded_churn\[$allowed\] .* uid=1 " 5 \
    "a process of the allowed user daemon was not admitted"
  expect_line "$log" "refused pid $stranger uid 65534 " 5 \
    "a process of nobody (not allowed) was not refused and logged"
  if grep -q "connect e2e_bounded_churn\[$stranger\]" "$log"; then
    fail "a process of nobody was admitted"
  fi
  kill "$allowed" "$stranger"
else
  echo "skip: admission of other users (needs root and setpriv)"
fi

# logrotate: the file is moved away, SIGHUP makes collect write a new one.
mv "$log" "$log.1"
kill -HUP "$collector"
expect_line "$log" "log reopened" 5 "SIGHUP did not reopen the log at its path"

# The restarted leak drifts as a series of its own.
expect_line "$log" "drift-start audit-service\[$leak2\] heap at record_audit_entry" 15 \
  "the restarted program's drift was not found as a series of its own"

if [ "$as_root" -eq 1 ] && unshare -m true 2> /dev/null; then
  mkdir "$work/container"
  start_under_shim unshare -m --propagation private sh -c \
    "mount -t tmpfs none '$work/container' && cp '$leak' '$work/container/contained' &&
     exec '$work/container/contained' 64"
  contained=$started
  expect_line "$log" "drift-start contained\[$contained\] heap at record_audit_entry \(.*leak_per_request.c:[0-9]+\)" \
    15 "a leak in its own mount namespace was not symbolised through /proc/PID/root"
  kill "$contained"
else
  echo "skip: a binary in its own mount namespace (needs root and unshare -m)"
fi

if [ "$as_root" -eq 1 ]; then
  start_under_shim "$drop_privileges" capset
  dropper=$started
  expect_line "$log" "end lifecycle_drop_privileges\[$dropper\] after [0-9.]+s, ([1-9][2-9]|[2-9][0-9]) censuses" \
    10 "the program that dropped root has no end line covering its censuses before and after the drop"
  if [ "$(grep -c "connect lifecycle_drop_privileges\[$dropper\]" "$log")" -ne 1 ] ||
    [ "$(grep -c "end lifecycle_drop_privileges\[$dropper\]" "$log")" -ne 1 ]; then
    grep "lifecycle_drop_privileges" "$log"
    fail "the reconnections of one image were logged as several processes"
  else
    passed=$((passed + 1))
  fi
fi

kill -TERM "$collector"
wait "$collector"
rc=$?
if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else fail "collect exited $rc on SIGTERM"; fi
expect_line "$log" "running audit-service\[$leak2\] at exit, .*verdict drift" 1 \
  "no final line for the live leaking program"
expect_line "$log" "running e2e_bounded_churn\[$steady1\] at exit" 1 \
  "no final line for the live steady program"
if cat "$log.1" "$log" | grep -q "drift-start e2e_bounded_churn"; then
  cat "$log.1" "$log"
  fail "the steady program was said to drift"
else
  passed=$((passed + 1))
fi
if [ -e "$socket" ]; then fail "the socket was left behind"; else passed=$((passed + 1)); fi
echo "--- the log:"; cat "$log.1" "$log"
finish
