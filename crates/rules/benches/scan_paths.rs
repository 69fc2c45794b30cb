//! Hot paths of `unithunt scan` with the embedded rule set: the block prefilter over raw NDJSON,
//! stage evaluation, JSON parsing of one line, and alert output.
//!
//! Input is generated in memory by `unithunt-corpus` (realistic Elastic Defend events): a 4 MiB
//! block at the default relevant rate (0.001) and one where every event is relevant.
//!
//! `cargo bench -p unithunt-rules --bench scan_paths -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use unithunt_corpus::{Config, Generator};
use unithunt_rules::alert::{event_alert, AlertTemplate, EventOrigin};
use unithunt_rules::{RulePack, RuleSet};

const BLOCK_SIZE: usize = 4 << 20;

/// Whole NDJSON lines from the generator until the block holds at least `BLOCK_SIZE` bytes, and
/// the relevant lines among them (as byte ranges).
fn block(relevant_rate: f64) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let mut gen = Generator::new(&Config {
        relevant_rate,
        ..Config::default()
    });
    let mut out = Vec::with_capacity(BLOCK_SIZE + 4096);
    let mut relevant = Vec::new();
    while out.len() < BLOCK_SIZE {
        let (line, is_relevant) = gen.next_event();
        let start = out.len();
        out.extend_from_slice(line.as_bytes());
        if is_relevant {
            relevant.push(start..out.len() - 1);
        }
    }
    (out, relevant)
}

/// Byte offset of the start of every line (the block ends with a newline).
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' && i + 1 < text.len() {
            starts.push(i + 1);
        }
    }
    starts
}

fn bench(c: &mut Criterion) {
    let set = RuleSet::new(RulePack::builtin());
    assert!(
        !set.rules.is_empty(),
        "the embedded pack has runnable rules"
    );
    let all_stages: Vec<usize> = (0..set.stages().len()).collect();

    let (rare, _) = block(0.001);
    let (all, relevant) = block(1.0);
    let rare_starts = line_starts(&rare);
    let all_starts = line_starts(&all);

    // The seed event: the first relevant line that some rule matches (else the first relevant one).
    let docs: Vec<(&[u8], serde_json::Value)> = relevant
        .iter()
        .take(1000)
        .map(|r| {
            let line = &all[r.clone()];
            (line, serde_json::from_slice(line).expect("generated JSON"))
        })
        .collect();
    let (line, doc) = docs
        .iter()
        .find(|(_, d)| !set.evaluate(d, &all_stages).is_empty())
        .unwrap_or(&docs[0])
        .clone();
    let matched = set.evaluate(&doc, &all_stages);
    let meta = &set.rules[0].meta;
    let origin = EventOrigin {
        file: "f".into(),
        offset: 0,
    };

    eprintln!(
        "scan_paths: {} rules, {} stages ({} always); rare block {} bytes / {} lines, {} flagged; \
         all_relevant block {} bytes / {} lines, {} flagged; seed event {} bytes, matches {:?}",
        set.rules.len(),
        set.stages().len(),
        set.always().len(),
        rare.len(),
        rare_starts.len(),
        set.prefilter().scan_block(&rare).len(),
        all.len(),
        all_starts.len(),
        set.prefilter().scan_block(&all).len(),
        line.len(),
        matched,
    );

    let mut group = c.benchmark_group("prefilter/scan_block");
    for (name, text) in [("rare", &rare), ("all_relevant", &all)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| set.prefilter().scan_block(black_box(text)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seed_event", |b| {
        b.iter(|| set.evaluate(black_box(&doc), black_box(&all_stages)))
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("line", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(line)).unwrap())
    });
    group.finish();

    let template = AlertTemplate::new(meta);
    let mut buf = Vec::with_capacity(8192);
    let mut group = c.benchmark_group("alert");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write", |b| {
        b.iter(|| {
            buf.clear();
            template.write_event_alert(black_box(&doc), black_box(&origin), &mut buf);
            buf.len()
        })
    });
    group.bench_function("build_and_serialize", |b| {
        b.iter(|| {
            serde_json::to_vec(&event_alert(meta, black_box(&doc), black_box(&origin))).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
