# openssl speed: sha256 and AES-128-GCM for 1 s each on 1 KiB blocks, in 2 forked processes
# (-multi 2). Heard from openssl and its 2 children.
expect_processes='>= 3'
command=(openssl speed -seconds 1 -bytes 1024 -multi 2 -evp aes-128-gcm sha256)
# The throughput figures, operation counts and timings are measurements: every number is
# replaced; the text around them (algorithm names, the table layout) is compared. The two
# children write their "+DT"/"+R" lines to the shared stdout and stderr in whatever order they
# run: both sorted.
filter_out() { sed -E 's/[0-9]+(\.[0-9]+)?k?/N/g; s/ +/ /g' | sort; }
filter_err() { sed -E 's/[0-9]+(\.[0-9]+)?/N/g' | sort; }
expect_in_stdout='sha256'
timeout_s=90
