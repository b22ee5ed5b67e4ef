#!/usr/bin/env bash
# `cmake --install` gives a working tree: the installed driftwatch finds the installed shim
# (not the build tree's) and reports a program's census.
# Usage: install_tree.sh BUILD_DIR PROGRAM
set -u
build=$1 program=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null || { echo "FAIL: install"; exit 1; }
[ -f "$prefix/lib/driftwatch/libdriftwatch.so" ] || { echo "FAIL: shim not installed"; exit 1; }
out=$("$prefix/bin/driftwatch" run --interval 100 --json "$prefix/v.json" -- "$program" 2>&1)
rc=$?
echo "$out"
# A one-census program is inconclusive (exit 4): what counts here is that a census arrived.
[ "$rc" -eq 4 ] || { echo "FAIL: installed driftwatch exited $rc, expected 4 (inconclusive)"; exit 1; }
grep -q '"pid"' "$prefix/v.json" || { echo "FAIL: no process reported a census"; exit 1; }
echo "1 passed, 0 failed"
