# openssl without randomness: digests, HMAC, AES-256-CBC with a fixed key and IV (encrypt,
# decrypt, compare), base64, an EC key from a fixed secret... and a failing decryption (wrong
# key: "bad decrypt", exit 1), all under one bash.
set -u
key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
iv=0f0e0d0c0b0a09080706050403020100
openssl dgst -sha256 -sha512 data/text.txt 2>&1
openssl dgst -sha3-256 data/numbers.txt
openssl dgst -sha256 -hmac battery data/numbers.txt
openssl enc -aes-256-cbc -K $key -iv $iv -in data/sub/random.bin -out enc.bin
openssl enc -d -aes-256-cbc -K $key -iv $iv -in enc.bin | cmp - data/sub/random.bin && echo "aes round trip ok"
sha256sum enc.bin
openssl base64 -in data/sub/f1.txt
openssl enc -d -aes-256-cbc -K ${key/00/ff} -iv $iv -in enc.bin -out /dev/null
echo "wrong key: exit $?"
openssl x509 -in /etc/ssl/certs/ISRG_Root_X1.pem -noout -subject -fingerprint -sha256 2>&1 || true
exit 0
