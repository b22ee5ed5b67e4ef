"""alloc_heavy.py: an allocation-heavy Python program, for bench/overhead.

Run by Debian's /usr/bin/python3. It builds and drops many small objects the way ordinary Python
code does: dicts of records, lists that grow and shrink, strings built by formatting, joining and
slicing, and a dict index that is pruned as it goes, so CPython's allocator (pymalloc arenas for
small objects, malloc for large strings and list/dict tables) works all the time.
Prints a checksum of the results, which no heap tracker may change.

Usage: /usr/bin/python3 alloc_heavy.py [--scale X]   (default 1: 300 k records, ~1.5 s bare)
"""

import sys
import zlib


def records(n, seed):
    """Yields n pseudo-random records (dicts with strings, numbers and a small list)."""
    x = seed
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        name = "user-%d-%s" % (x % 50000, "x" * (x >> 58))
        yield {
            "id": i,
            "name": name,
            "tags": [name[: 1 + (x >> 20) % 8], str(x % 97), "t%d" % (x % 13)],
            "score": (x >> 32) % 1000,
        }


def main(argv):
    scale = 1.0
    if len(argv) == 3 and argv[1] == "--scale":
        scale = float(argv[2])
    elif len(argv) != 1:
        print("usage: alloc_heavy.py [--scale X]", file=sys.stderr)
        return 2
    if not 0 < scale <= 1000:
        print("usage: alloc_heavy.py [--scale X (0 < X <= 1000)]", file=sys.stderr)
        return 2
    n = int(300000 * scale)
    index = {}  # name -> list of ids
    window = []  # the newest records, as formatted lines
    check = 0
    for rec in records(n, 12345):
        index.setdefault(rec["name"], []).append(rec["id"])
        line = ",".join([rec["name"], *rec["tags"], str(rec["score"])])
        window.append(line)
        if len(window) >= 2048:
            # Summarise the window, then drop the older half of it and prune small index entries.
            text = "\n".join(window)
            check = zlib.crc32(text.encode(), check)
            words = {}
            for w in text.split(","):
                words[w] = words.get(w, 0) + 1
            check = (check + len(words) + max(words.values())) & 0xFFFFFFFF
            del window[:1024]
            if len(index) > 20000:
                index = {k: v for k, v in index.items() if len(v) > 1}
    check = zlib.crc32(repr(sorted((k, len(v)) for k, v in index.items())).encode(), check)
    print("alloc_heavy.py: records=%d checksum=%08x" % (n, check))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
