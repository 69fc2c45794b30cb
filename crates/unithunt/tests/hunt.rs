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
    assert_eq!(lookalike["severity"], "high");
    assert_eq!(lookalike["owner"], "unowned");
    let reasons = lookalike["reasons"].to_string();
    assert!(
        reasons.contains("one character away from syslog"),
        "{reasons}"
    );
    assert_eq!(lookalike["exec"][0], "ExecStart=/bin/true");
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
