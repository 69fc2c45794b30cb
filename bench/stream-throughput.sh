#!/usr/bin/env bash
# One `unithunt stream` worker against two, on the same generated Elastic Defend stream
# (ECS NDJSON keyed by host.name on a 4-partition topic of a local Tansu broker): wall time,
# events per second, the ratio, and where the CPU went (broker, each worker). Whole-process
# timings with /usr/bin/time and the broker's /proc counters; not a test.
#
#   bench/stream-throughput.sh [SIZE]     # SIZE for unithunt-corpus, default 1G
#   TANSU=/path/to/tansu STORAGE=memory://tansu/ bench/stream-throughput.sh   # another build or storage
#   WORKER_ARGS="-X fetch.wait.max.ms=10" bench/stream-throughput.sh            # client settings to try
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
tansu=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
storage=${STORAGE:-sqlite://tansu.db}
idle=3000
work=$(mktemp -d)
trap 'kill $broker 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p unithunt -p unithunt-corpus
cargo build --release -q -p unithunt-stream --example produce
port=$((20000 + RANDOM % 20000))
(cd "$work" && exec "$tansu" broker --listener-url tcp://127.0.0.1:$port \
  --advertised-listener-url tcp://127.0.0.1:$port --storage-engine "$storage" >/dev/null 2>&1) &
broker=$!
sleep 1
"$tansu" topic create bench --partitions 4 --broker tcp://127.0.0.1:$port
./target/release/unithunt-corpus --size "$size" --relevant 0.001 --out "$work/events.ndjson"
events=$(wc -l < "$work/events.ndjson")
./target/release/examples/produce 127.0.0.1:$port bench < "$work/events.ndjson"
rm "$work/events.ndjson"
ticks() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
hz=$(getconf CLK_TCK)
run() { # GROUP WORKERS
  local start end b0 b1
  b0=$(ticks)
  start=$(date +%s.%N)
  local pids=()
  for i in $(seq "$2"); do
    /usr/bin/time -f "  worker $i: %U s user, %S s system, %M KB peak" \
      ./target/release/unithunt stream --brokers 127.0.0.1:$port --topic bench --group "$1" \
      --input-format ecs -o none --exit-when-idle $idle --stats-interval 10 ${WORKER_ARGS:-} 2>"$work/$1-$i.err" &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  b1=$(ticks)
  # The idle wait at the end is not work: subtract it.
  local wall
  wall=$(echo "$end - $start - $idle / 1000" | bc -l)
  printf '%s worker(s): %.2f s, %.0f events/s; broker CPU %.1f s\n' "$2" "$wall" \
    "$(echo "$events / $wall" | bc -l)" "$(echo "($b1 - $b0) / $hz" | bc -l)"
  for i in $(seq "$2"); do
    grep -h "worker $i:" "$work/$1-$i.err"
    # Messages read (re-reads to rebuild state after a rebalance included) and the largest lag seen.
    grep -ho '[0-9]* messages ([0-9]*/s)' "$work/$1-$i.err" | tail -1 | sed 's/^/    /' || true
    grep -ho 'lag [0-9]*' "$work/$1-$i.err" | sort -k2 -n | tail -1 | sed 's/^/    largest /' || true
    grep -h 'state rebuilt' "$work/$1-$i.err" | sed 's/^/    /' || true
  done
  echo "$wall" > "$work/$1.wall"
}
echo "events: $events"
run one 1
run two 2
printf 'ratio (one / two): %.2f\n' "$(echo "$(cat "$work/one.wall") / $(cat "$work/two.wall")" | bc -l)"
