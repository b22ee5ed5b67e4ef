# zstd with 2 worker threads: compresses, then decompresses through a pipe in the post step.
prepare() { bash "$inputs/make_data.sh"; cat data/numbers.txt data/text.txt data/sub/random.bin > all.bin; }
command=(zstd -T2 -q -9 --long=24 all.bin -o all.bin.zst)
post() { sha256sum all.bin.zst; zstd -dc --long=24 all.bin.zst | cmp - all.bin && echo "round trip ok"; }
expect_in_stdout='round trip ok'
