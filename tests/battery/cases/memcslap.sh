# memcslap itself under driftwatch (4 client threads, 5,000 sets each) against a bare memcached
# started here as a daemon; the server is stopped afterwards.
expect_processes='== 1'
timeout_s=120
prepare() {
  # As a daemon it forks; its pid is found by its own command line (memcached writes its pid
  # file only after switching to nobody, who cannot write here).
  memcached -d -l 127.0.0.1 -p "$port" -U 0 -t 2 -m 64 -u nobody
  for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && return 0; sleep 0.1; done
  return 1
}
command=(memcslap --servers="127.0.0.1:$port" --concurrency=4 --execute-number=5000 --test=set)
stop_memcached() {
  local pid
  pid=$(pgrep -x -f "memcached -d -l 127.0.0.1 -p $port -U 0 -t 2 -m 64 -u nobody") || return 0
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid"
}
post() { stop_memcached; }
cleanup_case() { stop_memcached; }
# memcslap prints "Time to set 20000 keys by 4 threads: 0.689 seconds.": the durations are timings.
filter_out() { sed -E 's/[0-9]+\.[0-9]+ seconds/N seconds/'; }
expect_in_stdout='Time to set           20000 keys by    4 threads'
