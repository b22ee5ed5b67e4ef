# jq: 20,000 generated orders grouped by customer, totalled and sorted.
quick=1
expect_in_stdout='"customer": "c'
prepare() {
  awk 'BEGIN { printf "["; for (i = 0; i < 20000; i++) printf "%s{\"id\":%d,\"customer\":\"c%d\",\"qty\":%d,\"price\":%d.%02d}", (i ? "," : ""), i, (i * 7) % 113, i % 9 + 1, i % 50, i % 100; print "]" }' > orders.json
  cp "$inputs/query.jq" .
}
command=(jq -f query.jq orders.json)
