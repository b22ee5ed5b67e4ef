# xz with 2 threads: compresses the data files (multi-threaded mode), then tests them.
expect_processes='>= 1'
prepare() { bash "$inputs/make_data.sh"; cat data/numbers.txt data/text.txt data/sub/random.bin > all.bin; }
command=(xz -T2 --block-size=262144 -6 -v -k all.bin)
# xz -v ends with "all.bin: 1569.0 KiB / 3285.6 KiB = 0.478, 917 KiB/s, 0:03": the speed
# (printed only when xz judges the run long enough) and the elapsed time are timings.
filter_err() { sed -E 's/, [0-9.]+ [KMG]?i?B\/s//; s/, [0-9]+:[0-9]{2}$/, TIME/'; }
post() { sha256sum all.bin.xz; xz -t all.bin.xz && echo "xz test ok"; xz -l all.bin.xz; }
expect_in_stdout='xz test ok'
