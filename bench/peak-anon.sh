#!/usr/bin/env bash
# Peak anonymous memory (RssAnon: heap and stacks, not the page cache or mapped input files) of a
# command, sampled from /proc every 5 ms. /usr/bin/time's "maximum resident set size" counts the
# memory-mapped input too, which is not memory the process allocates.
# Usage: bench/peak-anon.sh COMMAND [ARGS...]
set -u
"$@" >/dev/null 2>&1 &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
  sleep 0.005
done
wait "$pid"
echo "peak RssAnon: $((peak / 1024)) MiB ($peak kB)"
