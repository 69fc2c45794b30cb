//! The seed's adversary tests in every input format unithunt reads: the real auditd recording,
//! and the LAUREL, Sysmon for Linux and Defender for Endpoint fixtures derived from it
//! (tests/fixtures/README.md). Alerts are assigned to scenarios by time, from the recording's
//! `UNITHUNT-SCENARIO` markers; every malicious scenario alerts, no benign one does.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::process::Command;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const RECORDING: &str = "../shared/samples/auditd/dev-enriched.log";
const SEED_RULE: &str = "rules/elastic/persistence_systemd_service_seed.toml";

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .current_dir(WORKSPACE)
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// (start time, scenario) of each scenario, from the recording's marker execs.
fn scenarios() -> Vec<(String, String)> {
    let (ecs, _) = run(&["convert", RECORDING]);
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
        (RECORDING, "auditd", &full),
        (
            "tests/fixtures/laurel/adversary-tests.json",
            "laurel",
            &full,
        ),
        (
            "tests/fixtures/defender/adversary-tests.csv",
            "defender-csv",
            &full,
        ),
        (
            "tests/fixtures/defender/adversary-tests.json",
            "defender-json",
            &full,
        ),
        (
            "tests/fixtures/sysmon/adversary-tests.syslog",
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
