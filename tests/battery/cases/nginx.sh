# nginx run as root: a master and 2 workers that switch to nobody, serving a static page and a
# 64 KiB file, loaded by wrk (2 threads, 20 connections, 4 s) and checked with curl. driftwatch
# must hear from all 3 processes: the workers serve every request.
expect_processes='== 3'
# The workers were never heard from until 7b70b92 (defect 4).
timeout_s=120
prepare() {
  mkdir -p html tmp
  sed "s|@RUN@|$run|g; s|@PORT@|$port|g" "$inputs/nginx.conf.in" > nginx.conf
  awk 'BEGIN { for (i = 0; i < 200; i++) print "<p>line " i "</p>" }' > html/index.html
  head -c 65536 /dev/zero | tr '\0' 'x' > html/big.bin
}
server=(nginx -p "$run" -c "$run/nginx.conf" -e stderr)
client() {
  set -o pipefail
  curl -sS "http://127.0.0.1:$port/hello"
  curl -sS "http://127.0.0.1:$port/index.html" | sha256sum
  curl -sS "http://127.0.0.1:$port/big.bin" | sha256sum
  curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/missing"
  timeout 30 wrk -t2 -c20 -d4s "http://127.0.0.1:$port/index.html" > wrk.out || return 1
  # Succeeded: requests were made, none failed or got an error status.
  grep -E 'requests in|Non-2xx|Socket errors' wrk.out
  grep -q 'Non-2xx\|Socket errors' wrk.out && return 1
  timeout 30 wrk -t2 -c10 -d2s "http://127.0.0.1:$port/big.bin" | grep -E 'Non-2xx|Socket errors' && return 1
  return 0
}
# wrk's "123456 requests in 4.00s, 1.2GB read" is a measurement: its numbers are replaced.
filter_client() { sed -E 's/[0-9]+(\.[0-9]+)?[A-Za-z]*/N/g'; }
# nginx logs "YYYY/MM/DD HH:MM:SS [level] PID#TID: ..." (nothing at level warn when all is well).
filter_err() { sed -E 's|^[0-9/]+ [0-9:]+ \[([a-z]+)\] [0-9]+#[0-9]+: |[\1] |'; }
