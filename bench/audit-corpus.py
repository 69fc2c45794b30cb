#!/usr/bin/env python3
"""A large audit log from the real recording: repeated, serials and times shifted so events stay
distinct. Usage: bench/audit-corpus.py [SIZE_BYTES] [OUT]  (defaults: 1e9, /tmp/audit-big.log)"""
import re, sys

size_wanted = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000_000
out_path = sys.argv[2] if len(sys.argv) > 2 else '/tmp/audit-big.log'
src = [l for l in open('../shared/samples/auditd/dev-enriched.log', 'rb').read().split(b'\n') if l]
pat = re.compile(rb'msg=audit\((\d+)\.(\d+):(\d+)\)')
with open(out_path, 'wb') as out:
    size = k = 0
    while size < size_wanted:
        for line in src:
            shifted = pat.sub(lambda m: b'msg=audit(%d.%s:%d)' % (
                int(m.group(1)) + k * 10, m.group(2), int(m.group(3)) + k * 1000), line, count=1)
            out.write(shifted + b'\n')
            size += len(shifted) + 1
        k += 1
print(f'{out_path}: {size} bytes, {k} copies')
