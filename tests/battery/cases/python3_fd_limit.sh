# python3 started under `ulimit -n 32` opens files until EMFILE: it must manage as many as bare
# (a server sized to its fd limit would otherwise refuse connections earlier).
expect_in_stdout='files: Too many open files'
command=(bash -c 'ulimit -n 32; exec python3 -c "
files = []
try:
    while True:
        files.append(open(\"/dev/null\"))
except OSError as error:
    print(\"opened\", len(files), \"files:\", error.strerror)"')
# Until 903bf90 libunwind's memory-check pipe sat inside the limit the process starts with, and
# python3 opened two fewer files under the shim.
