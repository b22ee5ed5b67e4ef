# git in a fresh repository: init, three commits (fixed dates and identity, so the hashes are
# the same every time), a branch and a merge, log, diff, a tag, gc, fsck.
set -eu
export GIT_AUTHOR_NAME=Battery GIT_AUTHOR_EMAIL=battery@example.org
export GIT_COMMITTER_NAME=Battery GIT_COMMITTER_EMAIL=battery@example.org
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
stamp() { export GIT_AUTHOR_DATE="2024-01-0$1T12:00:00Z" GIT_COMMITTER_DATE="2024-01-0$1T12:00:00Z"; }
git init -q -b main repo
cd repo
seq 1 2000 > numbers.txt
printf 'hello\n' > hello.txt
git add .
stamp 1; git commit -q -m "first"
seq 1 2000 | sed 's/5/five/' > numbers.txt
stamp 2; git commit -q -am "second: fives"
git checkout -q -b side
printf 'side\n' >> hello.txt
stamp 3; git commit -q -am "side change"
git checkout -q main
stamp 4; git merge -q --no-ff -m "merge side" side
git tag -a v1 -m "version 1"
git log --graph --format='%h %s (%an, %ad)' --date=iso-strict
git diff --stat HEAD~2 HEAD
git show --stat --format=%H v1 | head -5
git gc -q
git fsck --no-progress 2>&1
git count-objects -v | grep -E '^(count|in-pack|packs)'
git status --porcelain nonexistent-path-for-error || true
git rev-parse HEAD
git log --oneline nonexistent-ref 2>&1 || echo "git log failed with $?"
