# git: init, commits with fixed dates (same hashes every run), a branch and a merge, a tag,
# log, diff, gc (pack-objects, threads), fsck, and a failing log. Heard from bash and every git.
quick=1
expect_processes='>= 15'
expect_in_stdout='merge side'
prepare() { cp "$inputs/git_steps.sh" .; }
command=(bash git_steps.sh)
