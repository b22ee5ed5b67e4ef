# python3 printing the descriptor numbers it gets (POSIX: the lowest free ones, 3 and 4 for a
# pipe, then 5), then closing every descriptor above 2 (os.closerange, as daemons and
# close_fds do): its stdout and stderr must not change.
expect_in_stdout='pipe 3 4'
prepare() { cp "$inputs/fds.py" .; }
command=(python3 fds.py)
# Until 00d24d3 the shim held fds 3 and 4 from its constructor (LifecycleTest.ShimHoldsNoLowDescriptorBeforeMain), and until
# b040599 it wrote a line into the program's stderr when the program closed its socket
# (CensusTest.CensusSocketIsOutOfTheProgramsReach).
