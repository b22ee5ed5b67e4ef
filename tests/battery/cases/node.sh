# node: JSON, crypto, a worker thread, a child process, promises and a timer, exit code 6.
# Heard from node and /bin/echo.
expect_exit=6
expect_processes='>= 2'
prepare() { cp "$inputs/script.js" .; }
command=(node script.js)
expect_in_stdout='timer fired'
