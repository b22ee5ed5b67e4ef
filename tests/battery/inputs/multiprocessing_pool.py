# A multiprocessing pool of 3 forked workers mapping over 200 items, then a queue between two
# processes.
import multiprocessing as mp


def square_sum(n):
    return sum(i * i for i in range(n))


def producer(q):
    for i in range(100):
        q.put(i * 3)
    q.put(None)


if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(3) as pool:
        r = pool.map(square_sum, range(200), chunksize=10)
    print("pool:", len(r), sum(r))
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q,))
    p.start()
    total = 0
    while (item := q.get()) is not None:
        total += item
    p.join()
    print("queue:", total, "child exit", p.exitcode)
