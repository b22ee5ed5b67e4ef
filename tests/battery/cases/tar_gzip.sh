# tar with gzip (tar forks gzip): a deterministic archive (sorted names, fixed owner and times,
# no gzip timestamp), then listed and extracted again by the post step.
quick=1
expect_processes='>= 2'
prepare() { bash "$inputs/make_data.sh"; }
command=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner
         --use-compress-program='gzip -n -6' -cvf data.tar.gz data)
post() {
  sha256sum data.tar.gz
  tar -tzvf data.tar.gz
  mkdir x && tar -xzf data.tar.gz -C x && diff -r data x/data && echo "extracted identical"
}
expect_in_stdout='data/sub/random.bin'
