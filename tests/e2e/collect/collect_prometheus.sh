#!/usr/bin/env bash
# `driftwatch collect --metrics` read by real consumers: a real Prometheus server (Debian's
# `prometheus`) on loopback scrapes the collector every second, with docs/prometheus's rules
# loaded, while a leaking program (started through a symlink named audit-service) and a steady
# one run under the real shim. Read back through Prometheus's HTTP API: the leaking site's live
# gauge rises, its slope is positive, its verdict is drifting, it has a time to limit, the
# recording rule's deriv() is positive; the process totals and the collector's health are there.
# `promtool check metrics` passes on /metrics. When the leak ends its series leave /metrics and
# Prometheus (stale), and driftwatch_ended_processes_total counts it. Bad
# --metrics values exit 2 with one error line.
# Usage: collect_prometheus.sh DRIFTWATCH LEAK_PER_REQUEST BOUNDED_CHURN RULES_FILE
set -u
driftwatch=$1 leak=$2 steady=$3 rules=$4
seconds=0  # verdict_lib.sh's run_soak is not used here
source "$(dirname "${BASH_SOURCE[0]}")/../verdict_lib.sh"

for tool in prometheus promtool curl jq python3; do
  command -v "$tool" > /dev/null || { fail "$tool is missing (scripts/setup installs it)"; finish; exit; }
done

socket=$work/census.sock
log=$work/collect.log
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null; done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# wait_until SECONDS COMMAND...: until COMMAND succeeds.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.25
  done
}

start_under_shim() {
  (
    eval "$("$driftwatch" env --socket "$socket" --interval 100 --sample-bytes 16KiB)" || exit 1
    exec "$@"
  ) &
  started=$!
  pids+=("$started")
}

# --- Bad --metrics values: one line on stderr, exit 2.
bad_metrics() {
  local value=$1 pattern=$2
  "$driftwatch" collect --socket "$work/bad.sock" --metrics "$value" > "$work/bad.out" 2>&1
  local rc=$?
  if [ "$rc" -eq 2 ] && [ "$(grep -c "^driftwatch: error: " "$work/bad.out")" -eq 1 ] &&
    grep -Eq "$pattern" "$work/bad.out"; then
    passed=$((passed + 1))
  else
    cat "$work/bad.out"
    fail "--metrics $value: exit $rc, expected 2 and one line matching '$pattern'"
  fi
}
bad_metrics 127.0.0.1 "HOST:PORT.*no port"
bad_metrics 127.0.0.1:99999 "HOST:PORT.*port"
bad_metrics no-such-host.invalid:9464 "cannot resolve 'no-such-host.invalid'"

# --- The collector, on a port of its choosing.
"$driftwatch" collect --socket "$socket" --check-every 1 --log "$log" --metrics 127.0.0.1:0 &
collector=$!
pids+=("$collector")
if ! wait_until 5 grep -qs "metrics on http://127.0.0.1:[0-9]*/metrics" "$log"; then
  cat "$log"
  fail "collect did not say where it serves metrics"
  finish
  exit
fi
metrics_url=$(grep -o "http://127.0.0.1:[0-9]*/metrics" "$log" | head -1)
metrics_port=${metrics_url#http://127.0.0.1:}
metrics_port=${metrics_port%/metrics}
bad_metrics "127.0.0.1:$metrics_port" "cannot listen on 127.0.0.1:$metrics_port: Address already in use"

service=$work/audit-service
ln -s "$leak" "$service"
start_under_shim "$service" 64
leak1=$started
start_under_shim "$steady"
steady1=$started
# A command name with a quote, a backslash and a byte that is not UTF-8: escaped, and replaced
# by U+FFFD, or Prometheus would reject the whole scrape.
odd=$work/$'odd"na\\me\xff'
ln -s "$steady" "$odd"
start_under_shim "$odd"
odd1=$started

# --- A real Prometheus on a free loopback port, scraping every second, with the docs' rules.
prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp "$rules" "$work/rules.yml"
cat > "$work/prometheus.yml" << EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - rules.yml
scrape_configs:
  - job_name: driftwatch
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn > "$work/prometheus.log" 2>&1 &
pids+=("$!")
api=http://127.0.0.1:$prom_port/api/v1
wait_until 15 curl -sf "http://127.0.0.1:$prom_port/-/ready" -o /dev/null ||
  { cat "$work/prometheus.log"; fail "prometheus did not become ready"; finish; exit; }

# query PROMQL: the value of the first series of an instant query ("" when none).
query() {
  curl -sf "$api/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // ""'
}
# expect PROMQL SECONDS MESSAGE: until the query returns a series (a filter such as `> 0`
# inside the query makes it a condition).
found() { [ -n "$(query "$1")" ]; }
expect() {
  if wait_until "$2" found "$1"; then
    passed=$((passed + 1))
    return 0
  fi
  fail "$3 (query: $1)"
  return 1
}

site="{job=\"driftwatch\",comm=\"audit-service\",pid=\"$leak1\",kind=\"heap\",where=~\"record_audit_entry .*\"}"
expect "up{job=\"driftwatch\"} == 1" 10 "Prometheus does not scrape the collector"
expect "driftwatch_site_live_bytes$site > 0" 15 "no live gauge for the leaking site"
expect "driftwatch_site_verdict{comm=\"audit-service\",pid=\"$leak1\",kind=\"heap\",status=\"drifting\",where=~\"record_audit_entry .*\"} == 1" \
  20 "the leaking site's verdict is not drifting"
first=$(query "driftwatch_site_live_bytes$site")
sleep 3
second=$(query "driftwatch_site_live_bytes$site")
if [ -n "$first" ] && [ -n "$second" ] && awk -v a="$first" -v b="$second" 'BEGIN { exit !(b > a) }'; then
  passed=$((passed + 1))
  echo "ok: the leaking site's live gauge rose from $first to $second bytes in 3 s"
else
  fail "the leaking site's live gauge did not rise: '$first' then '$second'"
fi
expect "driftwatch_site_growth_bytes_per_second$site > 0" 5 "the leaking site's slope is not positive"
expect "driftwatch_site_time_to_limit_seconds$site > 0" 5 "the leaking site has no time to limit"
expect "driftwatch:site_live_bytes:deriv1h$site > 0" 10 \
  "the recording rule's deriv() of the leaking site is not positive"
for total in resident_memory_bytes open_fds threads heap_live_bytes censuses_total; do
  expect "driftwatch_process_$total{comm=\"audit-service\",pid=\"$leak1\",exe=\"$leak\"} > 0" 5 \
    "no driftwatch_process_$total for the leak"
done
expect "driftwatch_process_verdict{comm=\"audit-service\",pid=\"$leak1\",verdict=\"drift\"} == 1" 5 \
  "the leak's process verdict is not drift"
expect "driftwatch_processes_connected == 3" 5 "driftwatch_processes_connected is not 3"
odd_comm=$(curl -sf "$api/query" --data-urlencode "query=driftwatch_process_open_fds{pid=\"$odd1\"}" |
  jq -r '.data.result[0].metric.comm // ""')
if [ "$odd_comm" = $'odd"na\\me\xef\xbf\xbd' ]; then
  passed=$((passed + 1))
else
  fail "the odd command name reached Prometheus as '$odd_comm'"
fi
expect "driftwatch_censuses_received_total > 0" 5 "no censuses received counted"
expect "driftwatch_censuses_dropped_total == 0" 5 "no censuses-dropped counter at 0"
expect "driftwatch_stream_errors_total == 0" 5 "no stream-errors counter at 0"
expect "driftwatch_build_info{version=~\".+\"} == 1" 5 "no build info"
expect "driftwatch_last_analysis_duration_seconds > 0" 5 "no analysis duration"

# --- /metrics itself: promtool's lint passes with nothing to say.
curl -sf "$metrics_url" -o "$work/metrics.txt" || fail "curl $metrics_url failed"
if promtool check metrics < "$work/metrics.txt" > "$work/promtool.out" 2>&1 &&
  [ ! -s "$work/promtool.out" ]; then
  passed=$((passed + 1))
else
  cat "$work/promtool.out"
  fail "promtool check metrics complains about /metrics"
fi
echo "/metrics: $(wc -c < "$work/metrics.txt") bytes, $(grep -vc '^#' "$work/metrics.txt") samples," \
  "$(grep -c '^driftwatch_site_live_objects' "$work/metrics.txt") sites"
received=$(query 'driftwatch_censuses_received_total')

# --- The leak ends: its series leave /metrics and Prometheus; the ended counter keeps it.
kill -TERM "$leak1"
# Counted whatever its final verdict (the analysis's business: under heavy load a 13 s sampled
# leak once ended "steady" after drifting).
expect "sum(driftwatch_ended_processes_total) == 1" 10 \
  "the ended leak is not counted in driftwatch_ended_processes_total"
expect "absent(driftwatch_site_live_bytes{pid=\"$leak1\"})" 10 \
  "the ended leak's site series did not go stale in Prometheus"
expect "absent(driftwatch_process_resident_memory_bytes{pid=\"$leak1\"})" 5 \
  "the ended leak's process series did not go stale in Prometheus"
if curl -sf "$metrics_url" | grep -q "pid=\"$leak1\""; then
  fail "the ended leak is still in /metrics"
else
  passed=$((passed + 1))
fi
expect "driftwatch_censuses_received_total >= $received" 5 \
  "driftwatch_censuses_received_total went backwards when the leak ended"
expect "driftwatch_processes_connected == 2" 5 "driftwatch_processes_connected is not 2"

kill -TERM "$collector"
wait "$collector"
rc=$?
if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else fail "collect exited $rc on SIGTERM"; fi
if [ "$failed" -ne 0 ]; then
  echo "--- the log:"; cat "$log"
  echo "--- /metrics:"; cat "$work/metrics.txt"
fi
finish
