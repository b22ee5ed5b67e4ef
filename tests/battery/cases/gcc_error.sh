# gcc on a file that does not compile: the same diagnostics on stderr and exit 1.
expect_exit=1
prepare() { cp "$inputs/bad.c" .; }
command=(gcc -c bad.c)
