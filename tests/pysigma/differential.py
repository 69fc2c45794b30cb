#!/usr/bin/env python3
"""Differential test of `--pipeline` against pySigma (issue 18, item 9).

For every SigmaHQ Linux rule, converts the rule with pySigma's Lucene backend under
tests/pysigma/pipeline.yml and with `unithunt rules convert --pipeline` under the same file, and
compares the fields each query reads (every field the pipeline makes starts with `t.`) and whether
the rule is refused. pySigma is a test-only reference (a venv in CI), never a dependency.

Usage: differential.py UNITHUNT_BINARY RULES_DIR
Exit 0 when every rule both convert reads the same fields and both refuse the same rules.
"""
import pathlib
import re
import subprocess
import sys

from sigma.backends.elasticsearch import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline

HERE = pathlib.Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline.yml"
# Deliberate differences (docs/conformance/sigma.md): unithunt refuses, with the reason, what it
# cannot convert faithfully; pySigma's backend emits a query that reads differently there.
KNOWN = {
    "Lucene has no anchors": "a PCRE anchor inside a group has no Lucene equivalent (issue 18, item 8)",
}
FIELD = re.compile(r"(?<![\w.])t\.[A-Za-z0-9_.\-]*[A-Za-z0-9_]")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def lucene_fields(query):
    # A Lucene field is a name before `:`; values are quoted or escaped, so drop quoted text.
    text = STRING.sub('""', query)
    return {m.group(0) for m in re.finditer(r"(?<![\w.\\])(t\.[A-Za-z0-9_.\-]*[A-Za-z0-9_])(?=:)", text)}


def eql_fields(query):
    return set(FIELD.findall(STRING.sub('""', query)))


def main():
    binary, rules_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    files = sorted(p for p in rules_dir.rglob("*.yml"))
    backend = LuceneBackend(processing_pipeline=ProcessingPipeline.from_yaml(PIPELINE.read_text()))
    ours = {}
    # One run for every file: `// title  (id)` then the query, or an error naming the file.
    for f in files:
        out = subprocess.run(
            [binary, "rules", "convert", "--pipeline", str(PIPELINE), str(f)],
            capture_output=True, text=True,
        )
        if out.returncode == 0:
            body = "\n".join(l for l in out.stdout.splitlines() if not l.startswith("//"))
            ours[f] = ("ok", eql_fields(body))
        else:
            ours[f] = ("refused", out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "")
    same = differ = only_ours = only_theirs = both_refuse = 0
    problems = []
    for f in files:
        try:
            queries = backend.convert(SigmaCollection.from_yaml(f.read_text()))
            theirs = ("ok", set().union(*(lucene_fields(q) for q in queries)) if queries else set())
        except Exception as e:  # pySigma refuses: the rule_failure, or what its backend lacks
            theirs = ("refused", f"{type(e).__name__}: {e}")
        mine = ours[f]
        rel = f.relative_to(rules_dir)
        if mine[0] == theirs[0] == "ok":
            if mine[1] == theirs[1]:
                same += 1
            else:
                differ += 1
                problems.append(f"{rel}: fields differ: unithunt {sorted(mine[1])}, pySigma {sorted(theirs[1])}")
        elif mine[0] == theirs[0]:
            both_refuse += 1
        elif mine[0] == "ok":
            only_ours += 1
            print(f"note: {rel}: pySigma's Lucene backend refuses it ({theirs[1][:160]}); unithunt converts it")
        elif any(k in mine[1] for k in KNOWN):
            why = next(v for k, v in KNOWN.items() if k in mine[1])
            print(f"known: {rel}: unithunt refuses it, pySigma converts it: {why}")
        else:
            only_theirs += 1
            problems.append(f"{rel}: unithunt refuses it ({mine[1][:200]}); pySigma converts it")
    print(f"{len(files)} rules: {same} read the same fields, {differ} differ, {both_refuse} refused by both, "
          f"{only_ours} converted by unithunt only, {only_theirs} by pySigma only")
    for p in problems:
        print("DIFF", p)
    # The comparison must have compared something: fields read on both sides.
    if same == 0 or not any(v[0] == "ok" and v[1] for v in ours.values()):
        print("error: no rule compared", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
