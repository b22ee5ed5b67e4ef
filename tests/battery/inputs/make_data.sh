# Makes deterministic input files in ./data: text, numbers and pseudo-random bytes (~3 MB).
set -eu
mkdir -p data/sub
seq 1 100000 > data/numbers.txt
awk 'BEGIN { for (i = 0; i < 30000; i++) printf "line %d: the quick brown fox %d jumps\n", i, (i * 7919) % 10007 }' > data/text.txt
head -c 1500000 /dev/zero | openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 -nosalt > data/sub/random.bin
for i in 1 2 3 4 5; do printf 'file %d\n' "$i" > "data/sub/f$i.txt"; done
touch -d @1700000000 data data/* data/sub/*
