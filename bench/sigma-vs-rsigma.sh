#!/usr/bin/env bash
# Sigma throughput: unithunt against rsigma 0.23.0 (a Rust Sigma engine; install it for local
# comparisons only: `cargo install rsigma --version 0.23.0 --locked`), one core each, the same
# SigmaHQ Linux rules, the same ECS events, the same field mapping and log source guards
# (pipelines/ecs-linux.yml; bench/rsigma-ecs-linux.yml is its pySigma form). Also checks that
# both alert on the same (rule, event) pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=../shared/peer/sigma/rules/linux
events=${1:-/tmp/c50k.ndjson}
if [ ! -f "$events" ]; then
  cargo run --release -q -p unithunt-corpus -- --size 70M --relevant 0.05 --out /tmp/corpus-70m.ndjson
  head -50000 /tmp/corpus-70m.ndjson > "$events"
fi
cargo build --release -q
uh="./target/release/unithunt scan -q -o ndjson -j 1 --no-builtin --rules $rules $events"
rs="rsigma engine eval -r $rules -p bench/rsigma-ecs-linux.yml --no-stats --include-event"
$uh > /tmp/uh-sigma.ndjson
$rs < "$events" > /tmp/rs-sigma.ndjson 2>/dev/null
python3 - <<'PY'
import json
a = {(d["rule_id"], d["event"]["event"]["id"]) for d in map(json.loads, open("/tmp/rs-sigma.ndjson"))}
b = {(d["kibana.alert.rule.rule_id"], d["event"]["id"]) for d in map(json.loads, open("/tmp/uh-sigma.ndjson"))}
print(f"rsigma {len(a)} alerts, unithunt {len(b)}, in common {len(a & b)}")
PY
hyperfine -N -w 1 -r 5 "$uh" "sh -c '$rs < $events > /dev/null 2>&1'"
