# python3 multiprocessing: a pool of 3 forked workers and one more child feeding a queue, each
# alive for several census intervals (a fork child that ends within one interval is silent by
# design); heard from the parent and its 4 forked children. The pool's workers are ended by
# SIGTERM (Pool.__exit__ calls terminate), the producer by os._exit.
expect_processes='>= 5'
expect_in_stdout='queue: 14850 child exit 0'
prepare() { cp "$inputs/multiprocessing_pool.py" .; }
command=(python3 multiprocessing_pool.py)
# Children that block and leave with os._exit were never heard from until 96350c1
# (LifecycleTest.QuietWorkersLeavingWithUnderscoreExitAreHeardFrom).
