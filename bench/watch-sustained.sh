#!/usr/bin/env bash
# `unithunt watch` under a sustained load: bench/audit-writer.py appends real audit records at
# RATE records/s for SECONDS (rotating the log like auditd), watch follows it; prints the rate
# reached, the alert latency (alert raised - audit record time: median, p99, max) and watch's
# resident memory every 30 s (flat memory: no growth after warm-up).
#
#   bench/watch-sustained.sh [RATE] [SECONDS]      (defaults: 50000 600)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-50000}
secs=${2:-600}
dir=$(mktemp -d /tmp/unithunt-watch-bench.XXXXXX)
cargo build --release -q -p unithunt
: > "$dir/audit.log"
./target/release/unithunt watch "$dir/audit.log" --checkpoint "$dir/state/cp" -o none \
  --poll-ms 100 --stats-interval 60 --this-host false 2> "$dir/watch.err" &
watch=$!
sleep 1
python3 bench/audit-writer.py "$dir/audit.log" --rate "$rate" --seconds "$secs" 2> "$dir/writer.err" &
writer=$!
echo "time_s rss_kib" > "$dir/rss.txt"
t=0
while kill -0 "$writer" 2>/dev/null; do
  sleep 30; t=$((t + 30))
  echo "$t $(awk '/VmRSS/ {print $2}' /proc/$watch/status)" >> "$dir/rss.txt"
done
sleep 2
kill -TERM "$watch"; wait "$watch" || true
cat "$dir/writer.err"
tail -n 1 "$dir/watch.err"
python3 - "$dir" <<'PY'
import json, sys, datetime, glob
d = sys.argv[1]
def ms(s):
    return datetime.datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp() * 1000
lat = []
groups = {}
alerts = []
for f in sorted(glob.glob(d + '/state/alerts.ndjson*')):
    for l in open(f):
        a = json.loads(l)
        alerts.append(a)
        g = a.get('kibana.alert.group.id')
        t = a.get('kibana.alert.original_time') or a.get('@timestamp')
        if g and t:
            groups[g] = max(groups.get(g, 0), ms(t))
for a in alerts:
    t = a.get('kibana.alert.original_time') or a.get('@timestamp')
    if not t or 'kibana.alert.start' not in a:
        continue
    newest = groups.get(a.get('kibana.alert.group.id'), ms(t))
    lat.append(ms(a['kibana.alert.start']) - max(newest, ms(t)))
lat.sort()
if lat:
    print(f'alerts in the journal (the last two files): {len(lat)}; latency ms: median {lat[len(lat)//2]:.0f}, '
          f'p99 {lat[int(len(lat)*0.99)]:.0f}, max {lat[-1]:.0f}')
print(open(d + '/rss.txt').read())
PY
echo "state kept in $dir"
