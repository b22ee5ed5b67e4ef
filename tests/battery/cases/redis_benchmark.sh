# redis-benchmark itself under driftwatch (2 client threads, 40 connections, 10,000 requests
# per test) against a bare redis-server started here; the server is stopped afterwards.
expect_processes='== 1'
timeout_s=120
prepare() {
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$run/redis.pid" --logfile "$run/redis.log" --dir "$run" > /dev/null
  for _ in $(seq 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
command=(redis-benchmark -h 127.0.0.1 -p "$port" -n 10000 -c 40 --threads 2 --csv -t set,get,lpush,mset)
cleanup_case() { [ -f "$run/redis.pid" ] && kill -KILL "$(cat "$run/redis.pid")" 2> /dev/null; }
post() { redis-cli -p "$port" dbsize; redis-cli -p "$port" shutdown nosave > /dev/null 2>&1; sleep 0.2; }
# Throughput and latency are measurements: their numbers are replaced.
filter_out() { sed -E 's/[0-9]+(\.[0-9]+)?/N/g'; }
expect_in_stdout='"MSET (10 keys)"'
