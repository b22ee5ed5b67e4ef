#!/usr/bin/python3
"""Splits what `driftwatch run` wrote to stdout into the target's own output and driftwatch's
report, which driftwatch prints after the command has exited (the target's output comes first).

Usage: split_report.py RAW TARGET_OUT REPORT_OUT
The report is the last "driftwatch: ..." headline followed, after any indented lines (such as
"  not heard from ..."), by "  command ran ..."; it may follow a target line that lacked its
final newline, so it is searched for anywhere, not only at a line start. Exit 1 when no report is found (all of RAW is then the target's).
"""
import re
import sys

raw = open(sys.argv[1], "rb").read()
matches = list(re.finditer(rb"driftwatch: [^\n]*\n(?:  [^\n]*\n)*?  command ran [^\n]*\n", raw))
cut = matches[-1].start() if matches else len(raw)
open(sys.argv[2], "wb").write(raw[:cut])
open(sys.argv[3], "wb").write(raw[cut:])
sys.exit(0 if matches else 1)
