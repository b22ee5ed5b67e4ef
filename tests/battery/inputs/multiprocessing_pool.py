# A multiprocessing pool of 3 forked workers mapping over 60 items (each worker busy for about
# 0.2 s, several census intervals), then a queue between two processes.
import multiprocessing as mp
import time


def square_sum(n):
    time.sleep(0.01)
    return sum(i * i for i in range(n))


def producer(q):
    time.sleep(0.2)
    for i in range(100):
        q.put(i * 3)
    q.put(None)


if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(3) as pool:
        r = pool.map(square_sum, range(60), chunksize=5)
    print("pool:", len(r), sum(r))
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q,))
    p.start()
    total = 0
    while (item := q.get()) is not None:
        total += item
    p.join()
    print("queue:", total, "child exit", p.exitcode)
