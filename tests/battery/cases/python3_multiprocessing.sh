# python3 multiprocessing: a pool of 3 forked workers and one more child feeding a queue; heard
# from the parent and its 4 forked children.
expect_processes='>= 5'
expect_in_stdout='queue: 14850 child exit 0'
prepare() { cp "$inputs/multiprocessing_pool.py" .; }
command=(python3 multiprocessing_pool.py)
# Pool workers block on a pipe and leave with os._exit: today they are never heard from
# (repro/quiet_fork_child.c).
expected_failure="a fix for quiet fork children (repro/quiet_fork_child.c)"
