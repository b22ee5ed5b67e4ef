# python3 printing the descriptor numbers it gets (POSIX: the lowest free ones, 3 and 4 for a
# pipe, then 5), then closing every descriptor above 2 (os.closerange, as daemons and
# close_fds do): its stdout and stderr must not change.
expect_in_stdout='pipe 3 4'
prepare() { cp "$inputs/fds.py" .; }
command=(python3 fds.py)
# Today the shim holds fds 3 and 4 from its constructor (repro/first_fd.c). Until b040599 it
# also wrote a line into the program's stderr when the program closed its socket
# (repro/close_all_fds.c); that part now passes and stays checked here.
expected_failure="a fix for the shim's low fds (repro/first_fd.c)"
