# python3: threads (6 hashing threads, a thread pool) and subprocesses (a child python3, sh,
# sort through pipes). Heard from: python3 and its children, so at least 2 processes.
quick=1
expect_processes='>= 2'
expect_in_stdout='child python: 499999500000 exit 3'
prepare() { cp "$inputs/threads_subprocess.py" .; }
command=(python3 threads_subprocess.py)
