#!/usr/bin/env bash
# `driftwatch run` hears from every process of the run and refuses what it cannot measure:
#   setuid_worker (root only): the master and its worker that dropped to nobody are both heard,
#     and the worker's leak (worker_leak) is found;
#   asan_fd_leak: an ASan build starts, runs to its end, its fd leak (leak_fd) is found, and a
#     note says heap sites are not tracked;
#   a #!/bin/sh script runs; a missing file, a Go program built without cgo (static) and a script
#     whose interpreter is static exit 2 before running; a cgo Go program runs with a note;
#   nginx (root only, when installed): master and 2 workers as nobody, loaded on 127.0.0.1, all
#     three heard from.
# Usage: run_checks.sh DRIFTWATCH SETUID_WORKER ASAN_PROGRAM
set -u
driftwatch=$1 setuid_worker=$2 asan_program=$3
work=$(mktemp -d)
chmod 755 "$work"  # nginx's workers (nobody) and the nobody worker must reach what is here
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 skipped=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }
skip() { echo "skip: $*"; skipped=$((skipped + 1)); }

# dw NAME ARGS...: driftwatch run ARGS with the JSON verdict in $work/NAME.json, the output in
# $work/NAME.out; sets rc.
dw() {
  local name=$1
  shift
  "$driftwatch" run --json "$work/$name.json" "$@" > "$work/$name.out" 2>&1
  rc=$?
}
# jcheck NAME FILTER MESSAGE
jcheck() {
  jq -e "$2" "$work/$1.json" > /dev/null && return 0
  cat "$work/$1.out"
  fail "$1: $3"
  return 1
}

check_setuid_worker() {
  if [ "$(id -u)" -ne 0 ]; then skip "setuid_worker needs root"; return; fi
  dw setuid_worker --interval 100 -- "$setuid_worker" 60
  if [ "$rc" -ne 1 ]; then cat "$work/setuid_worker.out"; fail "setuid_worker: exit $rc, expected 1"; return; fi
  jcheck setuid_worker '.processes | length == 2' "both processes heard" || return
  jcheck setuid_worker '.unheard_processes | length == 0' "no process unheard" || return
  jcheck setuid_worker '[.processes[].findings[] | select(.kind == "heap" and .status == "drifting")
      | select(any(.frames[]; .function == "worker_leak"))] | length == 1' \
    "the nobody worker's leak at worker_leak" || return
  ok "setuid_worker: master and nobody worker heard, worker_leak drifts"
}

check_asan() {
  dw asan --interval 100 -- "$asan_program" 40
  if grep -q "does not come first" "$work/asan.out"; then cat "$work/asan.out"; fail "asan: runtime not first"; return; fi
  if ! grep -q "asan_fd_leak: done" "$work/asan.out"; then cat "$work/asan.out"; fail "asan: program did not finish"; return; fi
  if [ "$rc" -ne 1 ]; then cat "$work/asan.out"; fail "asan: exit $rc, expected 1 (fd leak)"; return; fi
  jcheck asan '[.processes[].findings[] | select(.kind == "fds" and .status == "drifting")
      | select(any(.frames[]; .function == "leak_fd"))] | length == 1' "fd leak at leak_fd" || return
  jcheck asan '.notes | any(test("sanitizer.*heap sites are not tracked"))' "note on heap" || return
  ok "asan: starts behind its runtime, fd leak found, heap limitation noted"
}

check_refusals() {
  dw missing -- "$work/no-such-program"
  if [ "$rc" -eq 2 ] && grep -q "no-such-program" "$work/missing.out"; then ok "missing file: exit 2"
  else cat "$work/missing.out"; fail "missing file: exit $rc, expected 2 with its name"; fi

  printf '#!/bin/sh\necho script ran\n' > "$work/ok.sh"
  chmod 755 "$work/ok.sh"
  dw script -- "$work/ok.sh"
  if [ "$rc" -ne 2 ] && grep -q "script ran" "$work/script.out"; then ok "#!/bin/sh script runs (exit $rc)"
  else cat "$work/script.out"; fail "#!/bin/sh script: exit $rc"; fi
}

check_go() {
  if ! command -v go > /dev/null; then skip "go not installed"; return; fi
  export GOCACHE=$work/gocache GOPATH=$work/gopath GOFLAGS=-mod=mod GO111MODULE=off
  printf 'package main\nimport "fmt"\nfunc main() { fmt.Println("go ran") }\n' > "$work/plain.go"
  printf 'package main\n// #include <stdlib.h>\nimport "C"\nimport "fmt"\nfunc main() { C.free(C.malloc(16)); fmt.Println("cgo ran") }\n' > "$work/cgo.go"
  if ! (cd "$work" && CGO_ENABLED=0 go build -o plain plain.go && CGO_ENABLED=1 go build -o cgo cgo.go) \
      > "$work/go-build.out" 2>&1; then
    cat "$work/go-build.out"; fail "go build failed"; return
  fi
  dw go_static -- "$work/plain"
  if [ "$rc" -eq 2 ] && grep -q "Go program built without cgo" "$work/go_static.out" &&
      ! grep -q "go ran" "$work/go_static.out"; then ok "static Go binary: exit 2 before running"
  else cat "$work/go_static.out"; fail "static Go binary: exit $rc"; fi

  printf '#!%s\n' "$work/plain" > "$work/go.sh"
  chmod 755 "$work/go.sh"
  dw go_script -- "$work/go.sh"
  if [ "$rc" -eq 2 ] && grep -q "its interpreter" "$work/go_script.out"; then ok "script run by a static binary: exit 2"
  else cat "$work/go_script.out"; fail "script with a static interpreter: exit $rc"; fi

  dw go_cgo --interval 100 -- "$work/cgo"
  if [ "$rc" -ne 2 ] && grep -q "cgo ran" "$work/go_cgo.out" && grep -q "is a Go program" "$work/go_cgo.out"; then
    ok "cgo Go binary runs (exit $rc) with a note"
  else cat "$work/go_cgo.out"; fail "cgo Go binary: exit $rc"; fi
}

check_nginx() {
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  if [ "$(id -u)" -ne 0 ] || [ ! -x "$nginx" ]; then skip "nginx needs root and nginx"; return; fi
  local port=$((20000 + $$ % 20000))
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
user nobody nogroup;
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$port; location / { return 200 "ok\n"; } }
}
CONF
  dw nginx --interval 250 --duration 8 -- "$nginx" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  local run=$!
  sleep 1.5
  if command -v wrk > /dev/null; then
    wrk -t 1 -c 4 -d 5s "http://127.0.0.1:$port/" > "$work/load.out" 2>&1
  else
    for _ in $(seq 2000); do curl -s "http://127.0.0.1:$port/" > /dev/null; done
  fi
  wait "$run"
  rc=$?
  if [ "$rc" -eq 2 ] || [ "$rc" -eq 3 ]; then cat "$work/nginx.out"; fail "nginx: exit $rc"; return; fi
  jcheck nginx '[.processes[] | select(.exe | endswith("/nginx"))] | length >= 3' \
    "master and two workers heard" || return
  jcheck nginx '.unheard_processes | length == 0' "no nginx process unheard" || return
  ok "nginx: master and 2 nobody workers heard (exit $rc)"
}

check_setuid_worker
check_asan
check_refusals
check_go
check_nginx
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
