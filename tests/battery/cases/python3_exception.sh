# python3 dying of an uncaught exception: the exit code (1) and the traceback on stderr pass
# through unchanged.
expect_exit=1
expect_in_stdout='before the error'
prepare() { cp "$inputs/exception.py" .; }
command=(python3 exception.py)
