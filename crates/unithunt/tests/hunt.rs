//! `unithunt hunt`, end to end, on a tree the atomic tests are played into and on this host.

use std::process::Command;

fn unithunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .output()
        .expect("binary runs")
}

#[test]
fn planted_units_are_found_with_reasons_under_a_root() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-cli-{}", std::process::id()));
    let r = root.to_str().unwrap();
    for t in ["1", "3", "4"] {
        assert!(unithunt(&["atomic", "run", t, "--root", r])
            .status
            .success());
    }
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let findings: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let get = |unit: &str| {
        findings
            .iter()
            .find(|f| f["unit"] == unit)
            .unwrap_or_else(|| panic!("{unit}: {findings:?}"))
    };
    let lookalike = get("syslogd.service");
    assert_eq!(lookalike["severity"], "critical");
    assert_eq!(lookalike["owner"], "unowned");
    let reasons = lookalike["reasons"].to_string();
    assert!(
        reasons.contains("one character away from syslog"),
        "{reasons}"
    );
    assert_eq!(
        lookalike["exec"][0],
        "ExecStart=/usr/bin/touch /tmp/unithunt-atomic-marker"
    );
    // The generator's output unit is found in /run/systemd/generator, the generator itself too.
    assert_eq!(
        get("unithunt-atomic-gen.service")["fragment"],
        "/run/systemd/generator/unithunt-atomic-gen.service"
    );
    let generator = get("unithunt-atomic-gen");
    assert_eq!(generator["manager"], "generator");
    assert_eq!(generator["severity"], "high");
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("package database: none found"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&root);
    let o = unithunt(&["hunt", "--root", "/nonexistent/unithunt"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn this_host_is_hunted_without_error() {
    let o = unithunt(&["hunt", "-o", "ndjson"]);
    assert_eq!(o.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("under / (system and user managers)"),
        "{summary}"
    );
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(f["score"].as_u64().unwrap() <= 100);
    }
}

#[test]
fn a_baseline_reports_only_what_is_new_or_changed() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-base-{}", std::process::id()));
    let r = root.to_str().unwrap();
    let base = root.with_extension("baseline.json");
    let b = base.to_str().unwrap();
    assert!(unithunt(&["atomic", "run", "1", "--root", r])
        .status
        .success());
    let o = unithunt(&["hunt", "--root", r, "--save-baseline", b, "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    // Nothing changed: nothing to report.
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "--baseline",
        b,
        "-o",
        "json",
        "--min-severity",
        "info",
    ]);
    let same: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(same, serde_json::json!([]));
    // A new unit, and one byte appended to the old one.
    assert!(unithunt(&["atomic", "run", "3", "--root", r])
        .status
        .success());
    let unit = root.join("etc/systemd/system/unithunt-atomic-root.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text + "#").unwrap();
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "--baseline",
        b,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    let mut got: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                f["unit"].as_str().unwrap().into(),
                f["baseline"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("syslogd.service".to_string(), "new".to_string()),
            (
                "unithunt-atomic-root.service".to_string(),
                "changed".to_string()
            )
        ]
    );
    std::fs::write(&base, "{}").unwrap();
    let o = unithunt(&["hunt", "--root", r, "--baseline", b]);
    assert_eq!(o.status.code(), Some(2), "not a baseline");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&base);
}
