#!/usr/bin/env bash
# One `unithunt stream` worker against two, on the same generated Elastic Defend stream
# (ECS NDJSON keyed by host.name on a 4-partition topic of a local Tansu broker): events per
# second and the ratio. Whole-process timings with /usr/bin/time; not a test.
#
#   bench/stream-throughput.sh [SIZE]     # SIZE for unithunt-corpus, default 200M
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200M}
tansu=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
work=$(mktemp -d)
trap 'kill $broker 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p unithunt -p unithunt-corpus
cargo build --release -q -p unithunt-stream --example produce
port=$((20000 + RANDOM % 20000))
(cd "$work" && exec "$tansu" broker --listener-url tcp://127.0.0.1:$port \
  --advertised-listener-url tcp://127.0.0.1:$port --storage-engine sqlite://tansu.db >/dev/null 2>&1) &
broker=$!
sleep 1
"$tansu" topic create bench --partitions 4 --broker tcp://127.0.0.1:$port
./target/release/unithunt-corpus --size "$size" --relevant 0.001 --out "$work/events.ndjson"
events=$(wc -l < "$work/events.ndjson")
./target/release/examples/produce 127.0.0.1:$port bench < "$work/events.ndjson"
run() { # GROUP WORKERS
  local start end
  start=$(date +%s.%N)
  local pids=()
  for i in $(seq "$2"); do
    ./target/release/unithunt stream --brokers 127.0.0.1:$port --topic bench --group "$1" \
      --input-format ecs -o none --exit-when-idle 3000 2>"$work/$1-$i.err" &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  # The idle wait at the end is not work: subtract it.
  echo "$end - $start - 3" | bc
}
one=$(run one 1)
two=$(run two 2)
printf 'events: %s\none worker: %.2f s, %.0f events/s\ntwo workers: %.2f s, %.0f events/s\nratio: %.2f\n' \
  "$events" "$one" "$(echo "$events / $one" | bc -l)" "$two" "$(echo "$events / $two" | bc -l)" \
  "$(echo "$one / $two" | bc -l)"
echo "messages read (re-reads after a rebalance included):"
cat "$work"/one-*.err "$work"/two-*.err | grep -o '[0-9]* messages ([0-9]*/s)' 
