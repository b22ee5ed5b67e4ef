#!/usr/bin/env python3
"""make_seeds.py: cut real recordings into the small seed inputs of tests/fuzz/corpus/.

Usage: make_seeds.py OUT_DIR RECORDING...

The checked-in seeds were made from recordings of small programs, each with
  driftwatch run --interval 50 --duration 1 --record NAME.rec -- PROGRAM
(tests/corpus programs fd_churn, timer_per_request, thread_per_connection, child_worker_leak,
examples/demo_service, and `sh -c 'ls / >/dev/null; sleep 0.3; cat /dev/null'` without
--duration). For each recording it writes
  OUT_DIR/recording/NAME: the recording's first events up to SEED_BYTES, then its run end,
  with the modules pointed at no file (paths under /usr/ and /tmp/ moved to /nul/, build-ids
  zeroed, both the same length): the replay symbolises every site, and finding libc's debug
  info by its path or build-id would make each run take tens of milliseconds;
  OUT_DIR/census_stream/NAME.N: connection N's bytes, cut after the last census that ends
  within SEED_BYTES.
Small seeds keep the fuzzer fast; the formats are in docs/RECORDING.md and docs/PROTOCOL.md.
"""
import os
import struct
import sys

SEED_BYTES = 12 * 1024
FILE_HEADER = 16
DATA, RUN_END = 3, 5
CENSUS_END = 6
BUILD_IDS = 9


def events(blob):
    pos = FILE_HEADER
    while pos + 8 <= len(blob):
        etype, length = struct.unpack_from("<II", blob, pos)
        if pos + 8 + length > len(blob):
            return
        yield etype, blob[pos:pos + 8 + length]
        pos += 8 + length


def census_records(stream):
    """(type, payload offset, payload length) of each complete record of a census stream."""
    pos = 0
    while pos + 8 <= len(stream):
        rtype, length = struct.unpack_from("<II", stream, pos)
        if pos + 8 + length > len(stream):
            return
        yield rtype, pos + 8, length
        pos += 8 + length


def unlink_modules(stream):
    """The stream with its modules pointed at no file, every length unchanged."""
    out = bytearray(stream)
    for rtype, start, length in census_records(stream):
        if rtype == BUILD_IDS:
            (count,) = struct.unpack_from("<I", out, start)
            pos = start + 8
            for _ in range(count):
                _, id_length = struct.unpack_from("<II", out, pos)
                out[pos + 8:pos + 8 + id_length] = bytes(id_length)
                pos += 8 + id_length
    return bytes(out).replace(b"/usr/", b"/nul/").replace(b"/tmp/", b"/nul/")


def recording_seed(blob):
    # Each connection's stream is rewritten whole (a record may span data events), then put back
    # into the same events.
    streams = {c: unlink_modules(bytes(s)) for c, s in connection_streams(blob).items()}
    taken = {}
    out = bytearray(blob[:FILE_HEADER])
    run_end = b""
    for etype, event in events(blob):
        if etype == DATA:
            (connection,) = struct.unpack_from("<I", event, 8)
            size = len(event) - 8 - 16
            at = taken.get(connection, 0)
            event = event[:8 + 16] + streams[connection][at:at + size]
            taken[connection] = at + size
        if etype == RUN_END:
            run_end = event
        elif len(out) + len(event) <= SEED_BYTES:
            out += event
    return bytes(out + run_end)


def census_prefix(stream):
    """The stream up to the end of the last CensusEnd record that ends within SEED_BYTES."""
    pos, cut = 0, 0
    while pos + 8 <= len(stream):
        rtype, length = struct.unpack_from("<II", stream, pos)
        pos += 8 + length
        if pos > SEED_BYTES or pos > len(stream):
            break
        if rtype == CENSUS_END:
            cut = pos
    return stream[:cut]


def connection_streams(blob):
    streams = {}
    for etype, event in events(blob):
        if etype == DATA:
            (connection,) = struct.unpack_from("<I", event, 8)
            streams.setdefault(connection, bytearray()).extend(event[8 + 16:])
    return streams


def main():
    out_dir, recordings = sys.argv[1], sys.argv[2:]
    for sub in ("recording", "census_stream"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    for path in recordings:
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path, "rb") as f:
            blob = f.read()
        with open(os.path.join(out_dir, "recording", name), "wb") as f:
            f.write(recording_seed(blob))
        for connection, stream in connection_streams(blob).items():
            prefix = census_prefix(bytes(stream))
            if prefix:
                with open(os.path.join(out_dir, "census_stream", f"{name}.{connection}"), "wb") as f:
                    f.write(prefix)


if __name__ == "__main__":
    main()
