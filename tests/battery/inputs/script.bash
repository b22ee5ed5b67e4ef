# Bash: functions, arrays, arithmetic, pipelines, a subshell, command substitution, background
# jobs waited for, a here-document, and exit 3.
set -u
fib() { local a=0 b=1 i; for ((i = 0; i < $1; i++)); do ((b = a + b, a = b - a)); done; echo $a; }
echo "fib 50: $(fib 50)"
declare -A seen
for w in $(seq 1 3000 | awk '{ print $1 % 37 }'); do seen[$w]=$((${seen[$w]:-0} + 1)); done
echo "keys: ${#seen[@]}, seen[5]=${seen[5]}"
for i in 1 2 3 4; do (sleep 0.0$i; echo "job $i" > "job$i.txt") & done
wait
cat job*.txt | sort
printf '%s\n' c a b | sort | tr a-z A-Z | paste -sd,
(cd /; pwd)
cat <<END | wc -l
one
two
three
END
echo "to stderr" >&2
ls /nonexistent-dw-battery
echo "ls said $?"
exit 3
