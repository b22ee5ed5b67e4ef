# gcc: compiles and links a C program (driver, cc1, as, collect2, ld: at least 5 processes);
# the program is then run and the object checksummed, and both must match the bare build.
expect_processes='>= 5'
prepare() { cp "$inputs/hello.c" .; }
command=(gcc -O2 -Wall -o hello hello.c)
post() { ./hello; echo "hello exit $?"; sha256sum hello; }
expect_in_stdout='hello exit 7'
