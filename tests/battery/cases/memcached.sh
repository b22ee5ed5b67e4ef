# memcached (4 worker threads, run as root, switching to nobody itself) under driftwatch,
# loaded on loopback by memcslap (4 client threads, 5,000 sets then 5,000 gets each), then
# checked with memccp/memccat and a raw protocol exchange.
expect_processes='== 1'
timeout_s=120
server=(memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 64 -c 512 -u nobody)
client() {
  set -o pipefail
  timeout 60 memcslap --servers="127.0.0.1:$port" --concurrency=4 --execute-number=5000 --test=set || return 1
  timeout 60 memcslap --servers="127.0.0.1:$port" --concurrency=4 --execute-number=5000 --test=get || return 1
  printf 'battery value\n' > key.txt
  memccp --servers="127.0.0.1:$port" key.txt && memccat --servers="127.0.0.1:$port" key.txt
  exec 3<> "/dev/tcp/127.0.0.1/$port"
  printf 'set k 0 0 5\r\nhello\r\nget k\r\nincr nope 1\r\nbogus\r\nquit\r\n' >&3
  timeout 5 cat <&3 | tr -d '\r'
}
# memcslap reports "Time to set 20000 keys by 4 threads: 0.689 seconds.": the durations are
# timings and are replaced; the counts stay.
filter_client() { sed -E 's/[0-9]+\.[0-9]+ seconds/N seconds/'; }
# memcached -u switches to nobody within milliseconds of starting, before the shim's first
# census connects: it was never heard from until 7b70b92 (defect 4; tests/e2e/run_checks).
