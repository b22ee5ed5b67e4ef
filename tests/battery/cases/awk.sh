# awk (Debian's mawk): associative arrays, printf, split, a pipe to sort through the shell.
prepare() { bash "$inputs/make_data.sh" 2> /dev/null; }
command=(awk '{ n = split($0, w, " "); words += n; for (i = 1; i <= n; i++) count[w[i]]++ }
              END { printf "lines %d words %d\n", NR, words;
                    for (k in count) if (count[k] > 20000) print k, count[k] | "sort";
                    close("sort"); print "done" > "/dev/stderr" }' data/text.txt)
expect_processes='>= 2'
expect_in_stdout='lines 30000'
