# perl: hashes, regexes, sort, a forked child that works for 0.3 s and exits 7, a pipe from
# seq, a warning on stderr and exit 4. Heard from perl, its fork and seq.
quick=1
expect_exit=4
expect_processes='>= 3'
expect_in_stdout='child exit 7'
prepare() { cp "$inputs/text.pl" .; }
command=(perl text.pl)
