# openssl without randomness: digests, HMAC, AES-256-CBC round trip with a fixed key, base64,
# a certificate read, and a decryption with the wrong key (its "bad decrypt" on stderr).
expect_processes='>= 9'
prepare() { bash "$inputs/make_data.sh" 2> /dev/null; cp "$inputs/openssl_steps.sh" .; }
command=(bash openssl_steps.sh)
expect_in_stdout='aes round trip ok'
# OpenSSL's error lines start with the thread id (the address of its pthread_t), which ASLR
# moves every run: "4087BA3CA07F0000:error:...". Only that field is replaced.
filter_err() { sed -E 's/^[0-9A-F]{16}:error:/THREAD:error:/'; }
