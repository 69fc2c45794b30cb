#!/usr/bin/env bash
# Whole-process comparison: unithunt eql against baselines (grep -c, jq) on the same NDJSON file.
# Usage: bench/compare.sh [FILE] [N_EVENTS]   (generates FILE with N_EVENTS synthetic ECS events if absent)
# Needs: hyperfine (Debian: apt-get install hyperfine), jq.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-/tmp/unithunt-bench.ndjson}
n=${2:-1000000}
if [ ! -s "$file" ]; then
  python3 - "$file" "$n" <<'PY'
import json, random, sys
path, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
names = ["bash", "sshd", "cron", "python3", "systemd", "dpkg", "curl", "nginx", "ls", "cat"]
with open(path, "w") as f:
    for i in range(n):
        t = f"2026-11-27T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
        if i % 50000 == 7:
            ev = {"@timestamp": t, "event": {"category": ["file"], "type": ["creation"]},
                  "host": {"name": "h1"}, "process": {"name": "bash", "pid": i},
                  "file": {"path": f"/etc/systemd/system/x{i}.service", "extension": "service"}}
        elif i % 3 == 0:
            ev = {"@timestamp": t, "event": {"category": ["file"], "type": ["change"]},
                  "host": {"name": "h1"}, "process": {"name": random.choice(names), "pid": i},
                  "file": {"path": f"/var/log/app/{i}.log", "extension": "log"}}
        else:
            ev = {"@timestamp": t, "event": {"category": ["process"], "type": ["start"]},
                  "host": {"name": "h1"}, "process": {"name": random.choice(names), "pid": i,
                  "args": ["x", "-v"], "parent": {"name": random.choice(names)}}}
        f.write(json.dumps(ev) + "\n")
PY
fi
cargo build --release -q
seed=$(python3 -c "import tomllib;print(tomllib.load(open('rules/elastic/persistence_systemd_service_seed.toml','rb'))['rule']['query'])")
echo "file: $file ($(wc -l < "$file") lines, $(du -h "$file" | cut -f1))"
hyperfine --warmup 1 --runs 5 \
  -n 'grep -c systemd' "grep -c systemd $file" \
  -n 'jq (seed file branch)' "jq -c 'select(.file.extension == \"service\")' $file | wc -l" \
  -n 'unithunt eql (seed rule)' "./target/release/unithunt eql -q --size 0 '$seed' $file"
