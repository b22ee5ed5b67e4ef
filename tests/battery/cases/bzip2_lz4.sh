# bzip2 and lz4 in one pipeline under bash: compress, decompress, compare (pipes, 4 children).
expect_processes='>= 4'
prepare() { bash "$inputs/make_data.sh"; }
command=(bash -c 'set -o pipefail; cat data/text.txt data/numbers.txt | bzip2 -9 | tee t.bz2 | bzip2 -d | lz4 -q -9 | lz4 -d -q | sha256sum; cmp <(bzip2 -dc t.bz2) <(cat data/text.txt data/numbers.txt) && echo same')
post() { sha256sum t.bz2; }
expect_in_stdout='same'
