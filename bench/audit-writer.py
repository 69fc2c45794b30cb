#!/usr/bin/env python3
"""Appends real audit records to a log at a fixed rate, the way auditd writes them, for
`bench/watch-sustained.sh`: the recordings of examples/atomic/ over and over, each record stamped
with the current time and a fresh serial (so every event is new and its latency measurable), the
log rotated like auditd (audit.log -> audit.log.1 ..., five kept) past --rotate-bytes.

Usage: audit-writer.py LOG --rate RECORDS_PER_SECOND --seconds N [--rotate-bytes B]
"""
import argparse, os, re, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('log')
ap.add_argument('--rate', type=int, default=50_000)
ap.add_argument('--seconds', type=int, default=600)
ap.add_argument('--rotate-bytes', type=int, default=8 << 20)
a = ap.parse_args()

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'examples', 'atomic')
lines = []
for f in ('dev-enriched.log', 'techniques.log'):
    # split('\n'), not splitlines(): ENRICHED records hold a 0x1d separator, a line break to Python.
    lines += open(os.path.join(here, f), encoding='utf-8').read().rstrip('\n').split('\n')
stamp = re.compile(r'msg=audit\(\d+\.\d+:(\d+)\)')
# Records of one event share a serial: map each original serial to a fresh one per pass.
parts = []
for l in lines:
    m = stamp.search(l)
    if m:
        parts.append((l[:m.start()], int(m.group(1)), l[m.end():]))
    else:
        parts.append((l, None, ''))

def rotate(log):
    for i in range(4, 0, -1):
        if os.path.exists(f'{log}.{i}'):
            os.replace(f'{log}.{i}', f'{log}.{i + 1}')
    os.replace(log, f'{log}.1')

tick = 0.01
per_tick = max(1, a.rate // 100)
serial_base = 10_000_000
written = 0
start = time.monotonic()
i = 0
pass_no = 0
out = open(a.log, 'a')
size = out.tell()
while time.monotonic() - start < a.seconds:
    now = time.time()
    t = f'{int(now)}.{int(now * 1000) % 1000:03d}'
    buf = []
    for _ in range(per_tick):
        head, serial, tail = parts[i]
        if serial is None:
            buf.append(head)
        else:
            buf.append(f'{head}msg=audit({t}:{serial_base + pass_no * 100_000 + serial % 100_000}){tail}')
        i += 1
        if i == len(parts):
            i = 0
            pass_no += 1
    text = '\n'.join(buf) + '\n'
    out.write(text)
    out.flush()
    written += per_tick
    size += len(text)
    if size > a.rotate_bytes:
        out.close()
        rotate(a.log)
        out = open(a.log, 'a')
        size = 0
    # Keep the rate: sleep until the next tick is due.
    due = start + written / a.rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
elapsed = time.monotonic() - start
print(f'wrote {written} records in {elapsed:.1f} s = {written / elapsed:.0f} records/s', file=sys.stderr)
