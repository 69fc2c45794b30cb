#!/usr/bin/env bash
# Whole-process comparison of `unithunt scan` against baselines on the same file:
#   rg -c of one literal (the memory-speed reference) and an equivalent jq filter.
# Usage: bench/compare.sh [SIZE] [RELEVANT_RATE]     (defaults: 2G 0.001)
# Needs: hyperfine, ripgrep, jq (Debian: apt-get install hyperfine ripgrep jq).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
rate=${2:-0.001}
file=/tmp/unithunt-corpus-$size-$rate.ndjson
cargo build --release -q -p unithunt -p unithunt-corpus
[ -s "$file" ] || ./target/release/unithunt-corpus --size "$size" --relevant "$rate" --out "$file"
echo "corpus: $file ($(du -h "$file" | cut -f1), $(wc -l < "$file") events)"
hyperfine -w 1 -r 10 -N \
  -n 'rg -c /etc/systemd/system/' "rg -c /etc/systemd/system/ $file" \
  -n 'unithunt scan -j 1' "./target/release/unithunt scan -j 1 -q -o ndjson $file" \
  -n 'unithunt scan -j 2' "./target/release/unithunt scan -j 2 -q -o ndjson $file"
# The seed rule's file branch as a jq filter (jq has no case-insensitive glob; this is the cheap part).
hyperfine -w 0 -r 1 -n 'jq (seed rule file branch)' \
  "jq -c 'select(.event.category[0]==\"file\" and (.file.path|test(\"^/etc/systemd/system/|^/lib/systemd/system/|^/usr/lib/systemd/system/|^/run/systemd/system/|/.config/systemd/user/\")) and .file.extension==\"service\")' $file"
bench/peak-anon.sh ./target/release/unithunt scan -j 2 -q -o ndjson "$file"
/usr/bin/time -v ./target/release/unithunt scan -j 2 -q -o ndjson "$file" 2>&1 >/dev/null | grep 'Maximum resident'
# Worst case (every event relevant) and benign candidates only (screened in, none alerts).
worst=/tmp/unithunt-corpus-500M-1.0.ndjson
[ -s "$worst" ] || ./target/release/unithunt-corpus --size 500M --relevant 1.0 --out "$worst"
benign=/tmp/unithunt-corpus-benign.ndjson
if [ ! -s "$benign" ]; then
  grep -F '"dpkg"' "$worst" > "$benign.1"
  for _ in 1 2 3 4 5 6 7; do cat "$benign.1"; done > "$benign"
  rm -f "$benign.1"
fi
for f in "$worst" "$benign"; do
  hyperfine -w 1 -r 5 -N \
    -n "unithunt scan -j 1 ($(basename "$f"))" "./target/release/unithunt scan -j 1 -q -o ndjson $f" \
    -n "unithunt scan -j 2 ($(basename "$f"))" "./target/release/unithunt scan -j 2 -q -o ndjson $f"
  /usr/bin/time -v ./target/release/unithunt scan -j 2 -q -o ndjson "$f" 2>&1 | grep 'Maximum resident'
done
