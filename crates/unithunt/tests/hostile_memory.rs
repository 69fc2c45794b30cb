//! Hostile volumes (issue 15, items 7 and 8): state that grows with the input must stay under the
//! caps the user sets. `eql` sequences and samples follow `--max-pending` (the candidates used to be
//! held whole for sorting, 2.5 GB for a million keys whatever the cap), Sigma correlations keep at
//! most `--max-pending` groups and say when they evict, and `value_count`/`value_percentile` cost
//! linear work, not a pass over the window per event.
//!
//! Memory is compared between two runs of the same input with a small and a large cap (peak RSS
//! from `wait4`): a ratio, never an absolute figure or a time.

mod common;
use common::Tmp;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_unithunt")
}

struct Run {
    code: i32,
    out: String,
    err: String,
    /// Peak resident set, KiB.
    max_rss_kb: i64,
}

/// Runs the binary with output to files, reaping it with `wait4` for its own peak RSS; a run past
/// `deadline` is killed and fails the test as a hang (quadratic work at these sizes takes many
/// minutes, linear work seconds even in a debug build).
// The child is reaped by `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run(t: &Tmp, args: &[&str], deadline: Duration) -> Run {
    let out_path = t.path("stdout");
    let err_path = t.path("stderr");
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4 failed");
        if started.elapsed() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!(
                "{:?} still running after {deadline:?}",
                &args[..args.len().min(3)]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::ExitStatus::from_raw(status);
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    Run {
        code: status.code().expect("exited, not killed by a signal"),
        out: std::fs::read_to_string(&out_path).unwrap(),
        err,
        max_rss_kb: usage.ru_maxrss,
    }
}

/// `n` process starts with distinct pids (each a 2 KB command line, so held events show in RSS),
/// then a process start and a file event for pid `target`: one complete sequence or sample.
fn distinct_keys(t: &Tmp, n: usize) -> String {
    let path = t.path("events.ndjson");
    let mut w = BufWriter::new(File::create(&path).unwrap());
    let pad = "x".repeat(2000);
    for i in 0..n {
        writeln!(
            w,
            r#"{{"@timestamp":"2026-11-27T10:00:00.{:06}Z","event":{{"category":["process"],"type":["start"]}},"process":{{"pid":{i},"name":"bash","command_line":"{pad}"}},"host":{{"name":"h"}}}}"#,
            i % 1_000_000
        )
        .unwrap();
    }
    writeln!(w, r#"{{"@timestamp":"2026-11-27T10:00:02Z","event":{{"category":["process"],"type":["start"]}},"process":{{"pid":"target","name":"bash"}},"host":{{"name":"h"}}}}"#).unwrap();
    writeln!(w, r#"{{"@timestamp":"2026-11-27T10:00:03Z","event":{{"category":["file"],"type":["creation"]}},"process":{{"pid":"target","name":"bash"}},"file":{{"path":"/etc/systemd/system/x.service"}},"host":{{"name":"h"}}}}"#).unwrap();
    drop(w);
    path
}

fn assert_cap_holds(query: &str) {
    let t = Tmp::new(query.split_whitespace().next().unwrap());
    let n = 60_000;
    let events = distinct_keys(&t, n);
    let small = run(
        &t,
        &["eql", "--max-pending", "500", query, &events],
        Duration::from_secs(300),
    );
    let large = run(
        &t,
        &["eql", "--max-pending", "1000000", query, &events],
        Duration::from_secs(300),
    );
    for (r, cap) in [(&small, 500), (&large, 1_000_000)] {
        assert_eq!(r.code, 0, "cap {cap}: {}", r.err);
        assert_eq!(r.out.lines().count(), 1, "cap {cap}: {}", r.out);
        assert!(r.out.contains("\"target\""), "cap {cap}: {}", r.out);
    }
    // Every distinct key but the newest 500 (and the complete one) was evicted, and said so.
    let evicted: u64 = small
        .err
        .split("warning: ")
        .nth(1)
        .and_then(|w| w.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no eviction warning: {}", small.err));
    assert!(
        (n as u64 - 1000..=n as u64).contains(&evicted),
        "{evicted} evicted: {}",
        small.err
    );
    assert!(!large.err.contains("evicted"), "{}", large.err);
    // 60,000 held events of 2 KB are well over 100 MB; 500 of them (plus the sorting buffer) are
    // not: the small cap must show in memory.
    assert!(
        small.max_rss_kb * 2 < large.max_rss_kb,
        "peak RSS {} KiB with --max-pending 500, {} KiB with 1,000,000",
        small.max_rss_kb,
        large.max_rss_kb
    );
}

#[test]
fn eql_sequences_hold_to_max_pending() {
    assert_cap_holds(
        "sequence by process.pid [process where process.name == \"bash\"] [file where true]",
    );
}

#[test]
fn eql_samples_hold_to_max_pending() {
    assert_cap_holds(
        "sample by process.pid [process where process.name == \"bash\"] [file where true]",
    );
}

const BASE_RULE: &str = "title: needle ran
name: needle_ran
logsource: {product: linux, category: process_creation}
detection:
    s: {Image|endswith: /needle}
    condition: s
level: low
---
";

fn needle(w: &mut impl Write, ms: u64, user: &str, cmd: &str) {
    writeln!(
        w,
        r#"{{"@timestamp":"2026-11-27T10:{:02}:{:02}.{:03}Z","event":{{"category":["process"],"type":["start"]}},"process":{{"pid":1,"name":"needle","executable":"/usr/bin/needle","command_line":"{cmd}"}},"user":{{"name":"{user}"}},"host":{{"name":"h"}}}}"#,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
    .unwrap();
}

/// `event_count` over 200,000 distinct users within the span: the group cap holds, the evictions
/// are reported, and a group that reaches its count after them still alerts.
#[test]
fn correlation_groups_hold_to_max_pending_and_evictions_are_reported() {
    let t = Tmp::new("groups");
    let rules = t.path("corr.yml");
    std::fs::write(
        &rules,
        format!(
            "{BASE_RULE}title: three runs by one user
id: 33333333-3333-4333-8333-333333333333
correlation:
    type: event_count
    rules: [needle_ran]
    group-by: [user.name]
    timespan: 1h
    condition: {{gte: 3}}
level: high
"
        ),
    )
    .unwrap();
    let events = t.path("events.ndjson");
    let mut w = BufWriter::new(File::create(&events).unwrap());
    let n = 200_000u64;
    for i in 0..n {
        needle(
            &mut w,
            i / 100,
            &format!("user-{i:08}-{}", "u".repeat(64)),
            "x",
        );
    }
    for k in 0..3 {
        needle(&mut w, n / 100 + k, "attacker", "x");
    }
    drop(w);
    // One thread: the blocks in flight between the workers and the merge (their matched
    // events) then weigh the same in both runs, however busy the machine is (with two threads a
    // loaded machine let them add tens of MB to the small run).
    let scan = |cap: &str| {
        run(
            &t,
            &[
                "scan",
                "-j",
                "1",
                "--no-builtin",
                "-o",
                "ndjson",
                "--max-pending",
                cap,
                "--rules",
                &rules,
                &events,
            ],
            Duration::from_secs(300),
        )
    };
    let small = scan("1000");
    let large = scan("1000000");
    for r in [&small, &large] {
        assert_eq!(r.code, 0, "{}", r.err);
        let alerts: Vec<&str> = r.out.lines().collect();
        assert_eq!(alerts.len(), 1, "{}", r.out);
        assert!(alerts[0].contains("attacker"), "{}", alerts[0]);
    }
    assert!(
        small.err.contains("group(s) evicted") && small.err.contains("three runs by one user"),
        "{}",
        small.err
    );
    assert!(!large.err.contains("evicted"), "{}", large.err);
    eprintln!(
        "peak RSS: {} KiB with 1,000 groups, {} KiB with 1,000,000",
        small.max_rss_kb, large.max_rss_kb
    );
    assert!(
        small.max_rss_kb * 2 < large.max_rss_kb,
        "peak RSS {} KiB with 1,000 groups, {} KiB with 1,000,000",
        small.max_rss_kb,
        large.max_rss_kb
    );
}

/// `value_count` and `value_percentile` over one group of 150,000 events: one pass each (a pass
/// over the window per event is ~10^10 steps here, hours).
#[test]
fn value_count_and_percentile_are_linear() {
    let t = Tmp::new("values");
    let events = t.path("events.ndjson");
    let mut w = BufWriter::new(File::create(&events).unwrap());
    let n = 150_000u64;
    for i in 0..n {
        // Values repeat every 1,000 events: 1,000 distinct, each 0.1% of the window.
        needle(&mut w, i / 100, "alice", &format!("cmd-{}", i % 1000));
    }
    needle(&mut w, n / 100, "alice", "rare-one");
    drop(w);
    for (kind, condition, fires) in [
        // 1,001 distinct values reached only by the last event.
        ("value_count", "{field: process.command_line, gte: 1001}", 1),
        // Each value is at least 0.001% of the window: nothing is under 0.0005%, and the run must
        // finish (a pass over the window per event does not). Firing is covered by the unit test
        // `value_kinds_measure_the_field`.
        (
            "value_percentile",
            "{field: process.command_line, lte: 0.0005}",
            0,
        ),
    ] {
        let rules = t.path(&format!("{kind}.yml"));
        std::fs::write(
            &rules,
            format!(
                "{BASE_RULE}title: {kind} on one user
id: 44444444-4444-4444-8444-444444444444
correlation:
    type: {kind}
    rules: [needle_ran]
    group-by: [user.name]
    timespan: 1d
    condition: {condition}
level: high
"
            ),
        )
        .unwrap();
        let r = run(
            &t,
            &[
                "scan",
                "--no-builtin",
                "-o",
                "ndjson",
                "--rules",
                &rules,
                &events,
            ],
            Duration::from_secs(240),
        );
        assert_eq!(r.code, 0, "{kind}: {}", r.err);
        assert_eq!(
            r.out.lines().count(),
            fires,
            "{kind} {condition}: {}",
            r.out
        );
        if fires > 0 {
            assert!(r.out.contains("rare-one"), "{kind}: {}", r.out);
        }
    }
}
