#!/usr/bin/env bash
# What a context switch costs under `pyprobe record --idle`: the sched_switch program's own run time
# (kernel.bpf_stats_enabled, read from the program's fdinfo) for switches of other processes and for
# switches of a sampled process (each a stack walk at switch-out and a record at switch-in; for plain
# `record` the CPU-clock program's runs instead), and the
# round-trip time of a Python ping-pong between two threads without pyprobe, under `record` and under
# `record --idle`.   sudo bench/switch-cost.sh [PYTHON] [ROUNDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-/root/.pyenv/versions/3.12.1/bin/python3.12}
rounds=${2:-20000}
reps=${3:-5}
pingpong=bench/workloads/pingpong.py
[ -x dist/pyprobe ] || { echo "run scripts/build.sh first" >&2; exit 1; }
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats' EXIT INT TERM
sysctl -qw kernel.bpf_stats_enabled=1

# fdinfo of pyprobe's program of type $2: "run_time_ns run_cnt"
prog_stats() {
  for f in /proc/$1/fdinfo/*; do
    if grep -q "^prog_type:	$2$" "$f" 2>/dev/null; then
      awk '/^run_time_ns/ {t=$2} /^run_cnt/ {c=$2} END {print t, c}' "$f"; return 0
    fi
  done
  return 0
}

# One ping-pong run; $1: "" (no pyprobe), "cpu" or "idle"; $2: 1 to sample the ping-pong, 0 to sample a
# sleeping bystander instead. Prints "us_per_round run_time_ns run_cnt walks".
run() {
  local mode=$1 sampled=$2 out=/tmp/pp-switch.$$ err=/tmp/pp-switch-err.$$
  if [ -z "$mode" ]; then echo "$("$python" $pingpong "$rounds") 0 0 0"; return; fi
  local fifo=/tmp/pp-switch-fifo.$$; rm -f $fifo; mkfifo $fifo
  "$python" $pingpong "$rounds" wait < $fifo > $out & local target=$!
  exec 9> $fifo
  local bystander=""
  if [ "$sampled" = 0 ]; then "$python" -c 'import time; time.sleep(3600)' 9>&- & bystander=$!; fi
  local flags=(); [ "$mode" = idle ] && flags=(--idle)
  dist/pyprobe record "${flags[@]}" -p "${bystander:-$target}" --format collapsed -o /tmp/pp-switch.prof 2> $err 9>&- & local pp=$!
  until grep -q Attached $err 2>/dev/null; do sleep 0.05; done
  local type=17; [ "$mode" = cpu ] && type=7
  local before; before=$(prog_stats $pp $type); before=${before:-"0 0"}
  echo go >&9
  until [ -s $out ]; do sleep 0.05; done
  local after; after=$(prog_stats $pp $type); after=${after:-"0 0"}
  exec 9>&-
  wait $target
  kill -TERM $pp 2>/dev/null; wait $pp || true
  [ -n "$bystander" ] && kill $bystander
  local walks; walks=$(sed -n 's/.*from \([0-9]*\) stacks walked.*/\1/p' $err); walks=${walks:-0}
  read -r t0 c0 <<< "$before"; read -r t1 c1 <<< "$after"
  echo "$(cat $out) $((t1 - t0)) $((c1 - c0)) $walks"
  rm -f $out $err $fifo /tmp/pp-switch.prof
}

echo "# $python, $rounds round trips, $reps repetitions; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %12s %14s %10s\n' case "us/round" "prog runs" "ns/prog run" walks
for rep in $(seq "$reps"); do
  for c in "none::" "record:cpu:1" "record --idle, bystander:idle:0" "record --idle, ping-pong:idle:1"; do
    IFS=: read -r name mode sampled <<< "$c"
    read -r us t n w <<< "$(run "$mode" "${sampled:-0}")"
    printf '%-34s %10s %12s %14s %10s\n' "$name" "$us" "$n" "$([ "$n" -gt 0 ] && echo $((t / n)) || echo -)" "$w"
  done
done
