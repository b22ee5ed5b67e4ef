# make with a failing recipe: make's error message on stderr and exit 2.
expect_exit=2
prepare() { cp "$inputs/Makefile.battery" Makefile; }
command=(make -s broken)
expect_in_stdout='about to fail'
