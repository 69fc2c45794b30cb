//! Single-event cost of the seed rule (systemd service persistence): predicate evaluation on parsed
//! ECS documents, and the raw-line prefilter.
//!
//! `cargo bench -p unithunt-eql --bench seed_rule -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use unithunt_engine::{is_true, EvalCtx, Expr, Prefilter, QueryKind};
use unithunt_eql::{compile, EqlOptions};

const SEED_RULE: &str = include_str!("../tests/seed_rule.eql");

/// `ls` started by bash: a process start that does not match.
const LS_BY_BASH: &str = r#"{"@timestamp":"2024-05-14T09:12:03.118Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","category":["process"],"type":["start"],"action":"exec","dataset":"auditd_manager.auditd","module":"auditd"},"host":{"name":"web-01","hostname":"web-01","os":{"type":"linux","family":"debian","name":"Ubuntu","version":"22.04.4 LTS"}},"user":{"id":"1000","name":"alice"},"process":{"pid":48213,"entity_id":"Nk0dYl4tyG8e6r1v","name":"ls","executable":"/usr/bin/ls","command_line":"ls -la /var/log","args":["ls","-la","/var/log"],"args_count":3,"working_directory":"/home/alice","parent":{"pid":48190,"entity_id":"Tq2XjY1mC0bW9s3a","name":"bash","executable":"/usr/bin/bash","args":["-bash"]}}}"#;

/// bash writing a new unit file: matches the file branch.
const EVIL_SERVICE_BY_BASH: &str = r#"{"@timestamp":"2024-05-14T09:13:41.502Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","category":["file"],"type":["creation"],"action":"creation","dataset":"endpoint.events.file","module":"endpoint"},"host":{"name":"web-01","hostname":"web-01","os":{"type":"linux","family":"debian","name":"Ubuntu","version":"22.04.4 LTS"}},"user":{"id":"0","name":"root"},"file":{"path":"/etc/systemd/system/evil.service","name":"evil.service","extension":"service","directory":"/etc/systemd/system","size":214},"process":{"pid":48301,"entity_id":"Vb7pQk2LmZ5xC8dR","name":"bash","executable":"/usr/bin/bash","command_line":"bash -c cat > /etc/systemd/system/evil.service","args":["bash","-c","cat > /etc/systemd/system/evil.service"]}}"#;

/// `systemctl enable evil.service` from bash: matches the process branch.
const SYSTEMCTL_ENABLE_BY_BASH: &str = r#"{"@timestamp":"2024-05-14T09:13:45.007Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","category":["process"],"type":["start"],"action":"exec","dataset":"auditd_manager.auditd","module":"auditd"},"host":{"name":"web-01","hostname":"web-01","os":{"type":"linux","family":"debian","name":"Ubuntu","version":"22.04.4 LTS"}},"user":{"id":"0","name":"root"},"process":{"pid":48322,"entity_id":"Hs3wUe9KaP1nJ6fT","name":"systemctl","executable":"/usr/bin/systemctl","command_line":"systemctl enable evil.service","args":["systemctl","enable","evil.service"],"args_count":3,"working_directory":"/root","parent":{"pid":48301,"entity_id":"Vb7pQk2LmZ5xC8dR","name":"bash","executable":"/usr/bin/bash","args":["bash"]}}}"#;

fn bench(c: &mut Criterion) {
    let q = compile(SEED_RULE, &EqlOptions::elasticsearch()).expect("the seed rule compiles");
    let expr: &Expr = match &q.kind {
        QueryKind::Events(e) => e,
        _ => unreachable!("the seed rule is an event query"),
    };

    let cases = [
        ("ls_by_bash_nomatch", LS_BY_BASH, false),
        ("evil_service_creation_match", EVIL_SERVICE_BY_BASH, true),
        ("systemctl_enable_match", SYSTEMCTL_ENABLE_BY_BASH, true),
    ];

    let mut group = c.benchmark_group("seed_rule/evaluate");
    group.throughput(Throughput::Elements(1));
    for (name, line, expected) in cases {
        let doc: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(is_true(expr, &mut EvalCtx::new(&doc)), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| is_true(black_box(expr), &mut EvalCtx::new(black_box(&doc))))
        });
    }
    group.finish();

    let prefilter = Prefilter::new(&[expr]);
    let mut group = c.benchmark_group("seed_rule/prefilter_any");
    group.throughput(Throughput::Elements(1));
    for (name, line, _) in &cases[..2] {
        let raw = line.as_bytes();
        eprintln!("prefilter {name}: any = {}", prefilter.any(raw));
        group.bench_function(*name, |b| b.iter(|| prefilter.any(black_box(raw))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
