# Descriptor numbers and closing every descriptor, as daemons and close_fds do: the pipe and the
# file get the lowest free numbers (3, 4, then 5), and closing all fds above 2 later is silent.
import os
import time

r, w = os.pipe()
print("pipe", r, w)
with open("data.txt", "w") as f:
    print("file fd", f.fileno())
time.sleep(0.3)  # long enough for a census connection to exist
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
blocks = [bytes(100) for _ in range(10000)]
time.sleep(0.2)
print("done", len(blocks))
