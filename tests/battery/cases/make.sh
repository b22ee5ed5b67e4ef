# make -j2: eight generated C files compiled in parallel (make, sh, gcc, cc1, as, ld, ...),
# linked and run. Heard from dozens of processes.
quick=1
expect_processes='>= 20'
prepare() { cp "$inputs/Makefile.battery" Makefile; }
command=(make -s -j2)
post() { ls; sha256sum program; }
expect_in_stdout='part8 '
timeout_s=120
