# sqlite3: 50,000 rows, an index, a join, aggregates, a window function, a rollback, then a
# failing statement under .bail (exit 1, the error on stderr).
quick=1
expect_exit=1
expect_in_stdout='50000|50000|'
prepare() { cp "$inputs/script.sql" .; }
stdin_file=script.sql
command=(sqlite3 test.db)
post() { sqlite3 test.db 'SELECT count(*), sum(grp) FROM t;'; }
