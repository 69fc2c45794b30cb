//! `unithunt rules list|show|test`, end to end.

use std::process::{Command, Output};

fn unithunt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_built_in_rule_passes_its_examples() {
    let o = unithunt(&["rules", "test"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // Every rule of the pack has examples of both kinds, and they ran.
    let list = text(&unithunt(&["rules", "list"]));
    let rules: Vec<&str> = list
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(rules.len() >= 6, "{list}");
    for r in &rules {
        let examples = r.split_whitespace().nth(4).unwrap();
        let (tp, tn) = examples.split_once('+').unwrap();
        assert!(tp != "0" && tn != "0", "{r}");
    }
    let passed: usize = out.lines().filter(|l| l.starts_with("PASS")).count();
    assert!(passed > 30, "{out}");
    assert!(
        out.contains(&format!("{passed} example(s) passed, 0 failed")),
        "{out}"
    );
}

#[test]
fn a_wrong_expectation_fails_and_names_the_example() {
    let dir = std::env::temp_dir().join(format!("unithunt-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rules/elastic/persistence_systemd_service_seed.toml"
    ))
    .unwrap();
    // The generator example is the seed rule's blind spot: claiming it alerts must fail.
    let wrong = seed.replacen(
        "expect = \"quiet\"\nwhy = \"blind spot: a generator",
        "expect = \"alert\"\nwhy = \"blind spot: a generator",
        1,
    );
    assert_ne!(wrong, seed);
    let file = dir.join("seed.toml");
    std::fs::write(&file, wrong).unwrap();
    let o = unithunt(&[
        "rules",
        "test",
        "--no-builtin",
        "--rules",
        file.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL  Detect Systemd Service  example 5 (alert): blind spot: a generator")
            && out.contains("-- no alert"),
        "{out}"
    );
    assert!(out.contains("6 example(s) passed, 1 failed"), "{out}");
    // A rule file without examples is untested, not failed, when it is not built in.
    let sigma = "rules/sigma/persistence_systemd_service_seed.yml";
    let o = unithunt(&["rules", "test", "--no-builtin", "--rules", sigma]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("untested  Systemd Service Persistence"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn show_prints_the_whole_rule_and_refuses_ambiguity() {
    let o = unithunt(&["rules", "show", "5b0d2c3e-7a41-4f7e-9c1a-2e6f8d3b1a02"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0));
    for part in [
        "Systemd Generator or Environment Generator Written",
        "severity    high (risk 73), confidence High",
        "TA0003 T1543.002",
        "Query (eql):\nfile where",
        "## Response and remediation",
        "alert  the seed's Test 4",
    ] {
        assert!(out.contains(part), "{part}\n{out}");
    }
    // "Systemd" names every rule: ambiguous, listed, exit 2.
    let o = unithunt(&["rules", "show", "systemd"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rules match"));
    let o = unithunt(&["rules", "show", "no such rule"]);
    assert_eq!(o.status.code(), Some(2));
}
