# redis-server under driftwatch, loaded on loopback by redis-benchmark (bounded: 20,000
# requests per test, 5 tests, 20 connections, 2 client threads), then checked with redis-cli.
# The client's results must be the same against the bare server and the one under the shim.
expect_processes='== 1'
timeout_s=120
server=(redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no
        --daemonize no --loglevel notice --dir "$run")
client() {
  set -o pipefail
  timeout 60 redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -c 20 --threads 2 -q \
    -t set,get,incr,lpush,lpop | tr '\r' '\n' | grep 'requests per second' || return 1
  redis-cli -h 127.0.0.1 -p "$port" set battery:key hello
  redis-cli -h 127.0.0.1 -p "$port" get battery:key
  redis-cli -h 127.0.0.1 -p "$port" incrby counter:__rand_int__ 5 > /dev/null
  redis-cli -h 127.0.0.1 -p "$port" exists battery:key
  redis-cli -h 127.0.0.1 -p "$port" no-such-command
}
# Throughput and latency are measurements: "SET: 85106.38 requests per second, p50=0.135 msec"
# keeps its words, its numbers are replaced.
filter_client() { sed -E 's/[0-9]+(\.[0-9]+)?/N/g'; }
# Each log line starts with "PID:ROLE DD Mon YYYY HH:MM:SS.mmm", or "PID:signal-handler (EPOCH)"
# in the signal handler; the version line names the pid too. Those, and nothing else, are removed.
filter_out() {
  sed -E 's/^[0-9]+:([A-Z]) [0-9]+ [A-Z][a-z]+ [0-9]+ [0-9:.]+ /\1 /;
          s/^[0-9]+:signal-handler \([0-9]+\) /signal-handler /; s/pid=[0-9]+/pid=N/'
}
