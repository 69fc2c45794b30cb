//! The seed's adversary tests in every input format unithunt reads: the real auditd recording,
//! and the LAUREL, Sysmon for Linux and Defender for Endpoint fixtures derived from it
//! (examples/atomic/RENDERINGS.md). Alerts are assigned to scenarios by time, from the recording's
//! `UNITHUNT-SCENARIO` markers; every malicious scenario alerts, no benign one does.

mod common;
use common::Tmp;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::process::Command;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The real auditd recording of the adversary tests (peer data: tests/common `shared`).
fn recording() -> &'static str {
    common::shared("samples/auditd/dev-enriched.log")
}
const SEED_RULE: &str = "rules/elastic/persistence_systemd_service_seed.toml";

fn run(args: &[&str]) -> (String, String) {
    common::unithunt_ok(args)
}

/// (start time, scenario) of each scenario, from the recording's marker execs.
fn scenarios() -> Vec<(String, String)> {
    let (ecs, _) = run(&["convert", recording()]);
    ecs.lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["process"]["args"][1] == "UNITHUNT-SCENARIO")
        .map(|e| {
            (
                e["@timestamp"].as_str().unwrap().to_string(),
                e["process"]["args"][2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn alerts_by_scenario(
    file: &str,
    format: &str,
    marks: &[(String, String)],
    rules: &[&str],
) -> BTreeMap<String, usize> {
    let (out, summary) = run(&[&["scan", "-o", "ndjson"][..], rules, &[file]].concat());
    assert!(
        summary.contains(&format!("read as {format} (sniffed)")),
        "{summary}"
    );
    assert!(summary.contains(" 0 skipped;"), "{summary}");
    let mut counts = BTreeMap::new();
    for a in out
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
    {
        let t = a["@timestamp"].as_str().unwrap();
        let sc = marks
            .iter()
            .rev()
            .find(|(start, _)| start.as_str() <= t)
            .map_or("before".to_string(), |m| m.1.clone());
        *counts.entry(sc).or_insert(0) += 1;
    }
    counts
}

#[test]
fn every_format_alerts_in_every_malicious_scenario_and_no_benign_one() {
    let marks = scenarios();
    // D1: the unit's creation, five appends, reload, enable; D2: the user unit, reload, enable;
    // D3: the look-alike unit; D4: the reload (the generator is the seed rule's blind spot).
    let full: BTreeMap<String, usize> = [("D1", 8), ("D2", 3), ("D3", 1), ("D4", 1)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    // Sysmon raises FileCreate for creations only, not for appends.
    let sysmon: BTreeMap<String, usize> = [("D1", 3), ("D2", 3), ("D3", 1), ("D4", 1)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    for (file, format, expected) in [
        (recording(), "auditd", &full),
        (
            "examples/atomic/laurel/adversary-tests.json",
            "laurel",
            &full,
        ),
        (
            "examples/atomic/defender/adversary-tests.csv",
            "defender-csv",
            &full,
        ),
        (
            "examples/atomic/defender/adversary-tests.json",
            "defender-json",
            &full,
        ),
        (
            "examples/atomic/sysmon/adversary-tests.syslog",
            "sysmon",
            &sysmon,
        ),
    ] {
        // The seed rule alone: its alerts per scenario are known exactly.
        let seed = ["--no-builtin", "--rules", SEED_RULE];
        assert_eq!(
            &alerts_by_scenario(file, format, &marks, &seed),
            expected,
            "{format}"
        );
        // The default pack: every malicious scenario alerts, no benign one.
        let pack = alerts_by_scenario(file, format, &marks, &[]);
        let scenarios: Vec<&str> = pack.keys().map(String::as_str).collect();
        assert_eq!(scenarios, ["D1", "D2", "D3", "D4"], "{format}: {pack:?}");
    }
}

/// `unithunt eql` with the query, over `input` (no --input-format): its results and summary.
fn eql(query: &str, input: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["eql", query, "--size", "1000", input])
        .current_dir(WORKSPACE)
        .output()
        .expect("binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Issue 16: `eql` reads what `scan` reads. A gzip'd raw audit log and a LAUREL file give the
/// results `eql` gives on the ECS `convert` makes of them.
#[test]
fn eql_reads_a_gzipped_audit_log_and_a_laurel_file() {
    let t = Tmp::new("eql");
    let query = r#"file where file.path : "/etc/systemd/system/*""#;
    let recording = std::fs::read(std::path::Path::new(WORKSPACE).join(recording())).unwrap();
    let gz = {
        use std::io::Write;
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        child.stdin.take().unwrap().write_all(&recording).unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let laurel = "examples/atomic/laurel/adversary-tests.json";
    for (name, source) in [
        ("audit.log.gz", t.file("audit.log.gz", gz)),
        ("laurel.json", format!("{WORKSPACE}/{laurel}")),
    ] {
        let (ecs, _) = run(&["convert", &source]);
        let ecs = t.file(&format!("{name}.ndjson"), ecs);
        let (want, _) = eql(query, &ecs);
        assert!(want.lines().count() > 2, "{name}: {want}");
        let (got, summary) = eql(query, &source);
        assert_eq!(got, want, "{name}: {summary}");
    }
}

/// Issue 16: `convert` takes `--input-format` and directories (their files read in name order,
/// one stream per format, as `scan` reads them).
#[test]
fn convert_reads_a_directory_with_a_given_format() {
    let t = Tmp::new("convert-dir");
    let text = std::fs::read_to_string(std::path::Path::new(WORKSPACE).join(recording())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    // Two parts of one log in a directory, named so that they sort in order, and a README.
    t.file("logs/a.log", lines[..half].join("\n") + "\n");
    t.file("logs/b.log", lines[half..].join("\n") + "\n");
    t.file("logs/README.md", "not telemetry\n");
    let dir = t.0.join("logs");
    let (whole, _) = run(&["convert", recording()]);
    let (from_dir, summary) = run(&["convert", "--input-format", "auditd", dir.to_str().unwrap()]);
    // The event cut at the boundary is two partial events; every other event is the same.
    let ids = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| serde_json::from_str::<Json>(l).unwrap()["event"]["id"].to_string())
            .collect()
    };
    let (a, b) = (ids(&whole), ids(&from_dir));
    assert!(b.len() >= a.len() && b.len() <= a.len() + 1, "{summary}");
    assert!(a.iter().all(|id| b.contains(id)), "{summary}");
    assert!(summary.contains("0 line(s) skipped"), "{summary}");
    // The format given is used even where sniffing would say otherwise: ECS lines are not audit.
    let ecs = t.file("ecs/x.ndjson", "{\"a\":1}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["convert", "--input-format", "auditd", &ecs])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.ndjson:1: "), "{err}");
    assert!(err.contains("1 line(s) skipped"), "{err}");
}

/// Issue 16: a log that opens with `#` comment lines (LAUREL's and auditd's test data do) is
/// sniffed as what follows them, and the comments are skipped as such, each with its line.
#[test]
fn an_audit_log_starting_with_comment_lines_is_read_as_audit() {
    let t = Tmp::new("comments");
    let text = std::fs::read_to_string(std::path::Path::new(WORKSPACE).join(recording())).unwrap();
    let commented = t.file(
        "commented.log",
        format!("# recorded by the live test\n#\n\n{text}"),
    );
    let (out, summary) = run(&["scan", "-o", "ndjson", &commented]);
    assert!(summary.contains("read as auditd (sniffed)"), "{summary}");
    for line in 1..=2 {
        assert!(
            summary.contains(&format!("commented.log:{line}: comment line")),
            "{summary}"
        );
    }
    assert!(summary.contains("commented.log:3: blank line"), "{summary}");
    let (plain, _) = run(&["scan", "-o", "ndjson", recording()]);
    let count = |s: &str| s.lines().count();
    assert_eq!(count(&out), count(&plain), "{summary}");
}

/// Peer data missing is a failure that says so, never a skipped test (tests/common `shared`).
#[test]
#[should_panic(expected = "is missing: unithunt's tests read the shared samples")]
fn missing_peer_data_fails_loudly() {
    common::shared("samples/no-such-recording.log");
}
