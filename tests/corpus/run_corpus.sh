#!/usr/bin/env bash
# Runs the labelled corpus (corpus.tsv) under `driftwatch run`, all programs at once (they are
# paced request loops that mostly sleep), and checks each verdict: every leaking program exits 1
# with a drifting finding of the right kind naming the right function, every steady program
# exits 0 with no finding.
# Usage: run_corpus.sh DRIFTWATCH BIN_DIR PLUGIN [SECONDS] [NAME...]
# CORPUS_RUN_FLAGS: more `driftwatch run` flags for every program, e.g. "--mode sampled".
set -u
driftwatch=$1 bin_dir=$2 plugin=$3 seconds=${4:-60}
shift 4 2>/dev/null || shift $#
only=("$@")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

names=() verdicts=() kinds=() functions=()
while IFS=$'\t' read -r name verdict kind function arguments; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  names+=("$name") verdicts+=("$verdict") kinds+=("$kind") functions+=("$function")
  args=()
  [[ "$arguments" == "@PLUGIN@" ]] && args=("$plugin")
  # shellcheck disable=SC2086 # CORPUS_RUN_FLAGS is a list of words
  "$driftwatch" run ${CORPUS_RUN_FLAGS:-} --duration "$seconds" --json "$work/$name.json" -- \
    "$bin_dir/corpus_$name" "${args[@]}" > "$work/$name.out" 2>&1 &
  echo $! > "$work/$name.pid"
done < "$here/corpus.tsv"

passed=0 failed=0
for i in "${!names[@]}"; do
  name=${names[$i]}
  wait "$(cat "$work/$name.pid")"
  rc=$?
  why=""
  if [[ "${verdicts[$i]}" == drift ]]; then
    if [[ $rc -ne 1 ]]; then
      why="exit $rc, expected 1"
    elif ! jq -e --arg kind "${kinds[$i]}" --arg fn "${functions[$i]}" \
        '[.processes[].findings[] | select(.kind == $kind and .status == "drifting")
          | select(any(.frames[]; .function == $fn or (.function | startswith($fn + "("))
                                  or (.function | endswith("::" + $fn))
                                  or (.function | contains("::" + $fn + "("))))] | length >= 1' \
        "$work/$name.json" > /dev/null; then
      why="no drifting ${kinds[$i]} finding names ${functions[$i]}"
    elif ! jq -e --arg fn "${functions[$i]}" \
        '[.processes[].findings[] | select(.status == "drifting")
          | select(all(.frames[]; (.function | contains($fn)) | not))] | length == 0' \
        "$work/$name.json" > /dev/null; then
      why="a drifting finding that is not the leak (false positive)"
    fi
  else
    if [[ $rc -ne 0 ]]; then
      why="exit $rc, expected 0"
    elif ! jq -e '[.processes[].findings[] | select(.status == "drifting")] | length == 0' \
        "$work/$name.json" > /dev/null; then
      why="a drifting finding in a steady program"
    fi
  fi
  if [[ -z "$why" ]]; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name: $why"
    sed 's/^/    /' "$work/$name.out" | head -40
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
