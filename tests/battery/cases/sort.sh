# sort with 2 threads and a small buffer, so it spills to temporary files and merges them.
prepare() { awk 'BEGIN { for (i = 0; i < 300000; i++) printf "%d %s\n", (i * 104729) % 1000003, "k" (i % 1000) }' > input.txt; }
command=(sort --parallel=2 -S 2M -T . -k2,2 -k1,1n input.txt -o sorted.txt)
post() { sha256sum sorted.txt; head -3 sorted.txt; ls; }
expect_in_stdout='sorted.txt'
