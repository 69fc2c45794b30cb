//! `unithunt rules list|show|test`, end to end.

mod common;

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

#[test]
fn a_tuning_file_silences_what_it_names_and_a_bad_one_stops_the_scan() {
    let dir = std::env::temp_dir().join(format!("unithunt-tuning-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tuning = dir.join("tuning.toml");
    let write = |id: &str| {
        std::fs::write(
            &tuning,
            format!(
                "[[exception]]\nname = \"lab unit\"\nrule_id = [\"{id}\"]\n\n[[exception.entries]]\nfield = \"file.path\"\ntype = \"wildcard\"\nvalue = \"/etc/systemd/system/acme-*\"\n"
            ),
        )
        .unwrap();
    };
    let recording = common::shared("samples/auditd/dev-enriched.log");
    let written = "Systemd Unit or Drop-in Written Outside Package Management";
    let count = |o: &Output, rule: &str| {
        text(o)
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["kibana.alert.rule.name"]
                    == rule
            })
            .count()
    };
    let plain = unithunt(&["scan", "-o", "ndjson", recording]);
    write("5b0d2c3e-7a41-4f7e-9c1a-2e6f8d3b1a01");
    let tuned = unithunt(&[
        "scan",
        "-o",
        "ndjson",
        "--tuning",
        tuning.to_str().unwrap(),
        recording,
    ]);
    assert_eq!(tuned.status.code(), Some(0));
    // D1's creation of acme-updater.service and its five appends go quiet (its enablement link,
    // under multi-user.target.wants/, is not named); other units still alert, other rules too.
    assert_eq!(count(&plain, written) - count(&tuned, written), 6);
    assert!(count(&tuned, written) > 0);
    let seed = "Detect Systemd Service";
    assert_eq!(count(&plain, seed), count(&tuned, seed));
    write("no-such-rule");
    let bad = unithunt(&["scan", "--tuning", tuning.to_str().unwrap(), recording]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("names rule_id \"no-such-rule\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--pipeline` (issue 18, item 9): a pySigma pipeline file decides the fields a Sigma rule reads
/// in `rules convert` and in `scan`; an unsupported transformation is an error naming the file.
#[test]
fn a_pysigma_pipeline_file_maps_fields_for_convert_and_scan() {
    let dir = std::env::temp_dir().join(format!("unithunt-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = dir.join("site.yml");
    std::fs::write(
        &pipeline,
        "name: site\ntransformations:\n  - type: field_name_mapping\n    mapping: {Image: [proc.path, proc.exe]}\n    rule_conditions: [{type: logsource, product: linux, category: process_creation}]\n",
    )
    .unwrap();
    let rule = dir.join("rule.yml");
    std::fs::write(
        &rule,
        "title: systemctl from a site field\nid: 5e0e6a7c-1111-4222-8333-944455556666\nlevel: high\nlogsource: {product: linux, category: process_creation}\ndetection:\n  s: {Image|endswith: /systemctl}\n  condition: s\n",
    )
    .unwrap();
    let (p, r) = (pipeline.to_str().unwrap(), rule.to_str().unwrap());
    let o = unithunt(&["rules", "convert", "--pipeline", p, r]);
    let out = text(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("proc.path") && out.contains("proc.exe"),
        "{out}"
    );
    assert!(!out.contains("process.executable"), "{out}");
    let events = dir.join("events.ndjson");
    std::fs::write(
        &events,
        "{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"proc\":{\"exe\":\"/usr/bin/systemctl\"},\"host\":{\"name\":\"h\"}}\n{\"@timestamp\":\"2026-01-01T00:00:01Z\",\"process\":{\"executable\":\"/usr/bin/systemctl\"},\"host\":{\"name\":\"h\"}}\n",
    )
    .unwrap();
    let o = unithunt(&[
        "scan",
        "--no-builtin",
        "--pipeline",
        p,
        "--rules",
        r,
        "-o",
        "json",
        events.to_str().unwrap(),
    ]);
    let out = text(&o);
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON array");
    assert_eq!(
        alerts.len(),
        1,
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("/usr/bin/systemctl") && out.contains("\"proc\""),
        "{out}"
    );
    // An unsupported transformation: refused with the file named, exit 2.
    std::fs::write(
        &pipeline,
        "transformations:\n  - type: drop_detection_item\n",
    )
    .unwrap();
    let o = unithunt(&["rules", "convert", "--pipeline", p, r]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("site.yml: transformation 1 (drop_detection_item): the transformation `drop_detection_item` is not supported"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
