# Python threads and subprocesses: 6 threads hashing, a pipe to a child Python, a child shell,
# and a thread pool; everything printed is deterministic.
import concurrent.futures
import hashlib
import subprocess
import sys
import threading

results = {}
lock = threading.Lock()


def work(n):
    h = hashlib.sha256()
    for i in range(20000):
        h.update(f"{n}:{i}".encode())
    blob = [bytes(1000) for _ in range(200)]  # allocations in every thread
    with lock:
        results[n] = h.hexdigest()[:16] + f" {len(blob)}"


threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(results):
    print(n, results[n])

child = subprocess.run([sys.executable, "-c", "import sys; print(sum(range(10**6))); sys.exit(3)"],
                       capture_output=True, text=True)
print("child python:", child.stdout.strip(), "exit", child.returncode)
shell = subprocess.run("echo from sh; ls /nonexistent-dw-battery 2>&1 | wc -l", shell=True,
                       capture_output=True, text=True)
print("child sh:", shell.stdout.split(), "exit", shell.returncode)
with subprocess.Popen(["/usr/bin/sort", "-r"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      text=True) as p:
    out, _ = p.communicate("b\na\nc\n")
print("sort -r:", out.split())
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    print("pool:", list(pool.map(lambda x: x * x, range(10))))
print("to stderr", file=sys.stderr)
