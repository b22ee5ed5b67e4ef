# bash: functions, associative arrays, pipelines, subshells, 4 background jobs, a here-document,
# a failing ls (its message on stderr) and exit 3. Heard from bash and many children.
quick=1
expect_exit=3
expect_processes='>= 8'
expect_in_stdout='fib 50: 12586269025'
prepare() { cp "$inputs/script.bash" .; }
command=(bash script.bash)
