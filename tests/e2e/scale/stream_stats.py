#!/usr/bin/env python3
"""stream_stats.py RECORDING: per census of a driftwatch recording (docs/RECORDING.md), the
stream bytes it took and the sites whose counters it carried, decoded from the census records
of preload/wire_format.h. One line per census: "census SEQ bytes N changed N defs N"; the
first connection only (the test programs do not fork)."""
import struct
import sys

RECORD_TYPES = {1: "Hello", 2: "CensusBegin", 3: "ModuleList", 4: "SiteDef", 5: "Counters",
                6: "CensusEnd", 7: "Limits", 8: "ThreadStates", 9: "BuildIds", 10: "CountersDelta"}


def connection_bytes(path):
    data = open(path, "rb").read()
    assert data[:6] == b"DWREC1", "not a recording"
    pos, stream = 16, bytearray()
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        payload = data[pos + 8:pos + 8 + length]
        pos += 8 + length
        if kind == 3 and struct.unpack_from("<I", payload, 0)[0] == 0:
            stream += payload[16:]
    return bytes(stream)


def censuses(stream):
    pos, current = 0, None
    while pos + 8 <= len(stream):
        kind, length = struct.unpack_from("<II", stream, pos)
        if pos + 8 + length > len(stream):
            break
        payload = stream[pos + 8:pos + 8 + length]
        if kind == 2:
            current = {"seq": struct.unpack_from("<Q", payload, 0)[0], "start": pos,
                       "changed": 0, "defs": 0}
        elif current is not None and kind == 4:
            current["defs"] += 1
        elif current is not None and kind in (5, 10):
            current["changed"] += struct.unpack_from("<I", payload, 4)[0]
        elif current is not None and kind == 6:
            current["bytes"] = pos + 8 + length - current["start"]
            yield current
            current = None
        pos += 8 + length


def main():
    for census in censuses(connection_bytes(sys.argv[1])):
        print("census {seq} bytes {bytes} changed {changed} defs {defs}".format(**census))


if __name__ == "__main__":
    main()
