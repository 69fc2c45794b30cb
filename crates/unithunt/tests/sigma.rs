//! Sigma rules through the scan: the seed's Sigma twin alerts on exactly the events the EQL seed
//! rule alerts on, from every input format; SigmaHQ's auditd rule, evaluated per raw record, finds
//! the unit files of the real recording.

mod common;
use serde_json::Value as Json;
use std::process::Command;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The real auditd recording of the adversary tests (peer data: tests/common `shared`).
fn recording() -> &'static str {
    common::shared("samples/auditd/dev-enriched.log")
}
const TWIN: &str = "rules/sigma/persistence_systemd_service_seed.yml";
const SEED: &str = "rules/elastic/persistence_systemd_service_seed.toml";

fn scan(args: &[&str]) -> Vec<Json> {
    let (stdout, _) = common::unithunt_ok(&[&["scan", "-q", "-o", "ndjson"][..], args].concat());
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events alerted on (the alert minus its `kibana.*` members and the rule's `threat`), sorted.
fn alerted_events(alerts: &[Json]) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .iter()
        .map(|a| {
            let mut e = a.as_object().unwrap().clone();
            e.retain(|k, _| !k.starts_with("kibana.") && k != "threat");
            Json::Object(e).to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_sigma_twin_alerts_on_exactly_the_events_the_eql_seed_rule_alerts_on() {
    let inputs = [
        "examples/atomic/ecs/adversary-tests.ndjson",
        "examples/atomic/ecs/benign-twins.ndjson",
        "examples/atomic-tests.ecs.ndjson",
        "examples/atomic/laurel/adversary-tests.json",
        "examples/atomic/sysmon/adversary-tests.syslog",
        "examples/atomic/defender/adversary-tests.csv",
        "examples/atomic/defender/adversary-tests.json",
        recording(),
    ];
    for input in inputs {
        let eql = scan(&["--no-builtin", "--rules", SEED, input]);
        let sigma = scan(&["--no-builtin", "--rules", TWIN, input]);
        assert!(!eql.is_empty(), "{input}: the seed rule alerts here");
        let (s, e) = (alerted_events(&sigma), alerted_events(&eql));
        assert!(
            s == e,
            "{input}: {} Sigma alerts, {} EQL alerts, or different events",
            s.len(),
            e.len()
        );
        // The alert names the Sigma rule, with Elastic's severity for its level.
        assert_eq!(
            sigma[0]["kibana.alert.rule.name"],
            "Systemd Service Persistence (seed rule, Sigma twin)"
        );
        assert_eq!(sigma[0]["kibana.alert.severity"], "high");
    }
}

/// The scenario of each serial, from the recording's marker execs.
fn scenarios() -> Vec<(u64, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["convert", recording()])
        .current_dir(WORKSPACE)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|e| e["process"]["args"][1] == "UNITHUNT-SCENARIO")
        .map(|e| {
            (
                e["event"]["sequence"].as_u64().unwrap(),
                e["process"]["args"][2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn sigmahq_auditd_service_creation_finds_the_recorded_units_per_record() {
    let rule = common::shared(
        "peer/sigma/rules/linux/auditd/path/lnx_auditd_systemd_service_creation.yml",
    );
    let alerts = scan(&["--no-builtin", "--rules", rule, recording()]);
    let marks = scenarios();
    let mut found: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let serial = a["event"]["sequence"].as_u64().unwrap();
            let scenario = marks
                .iter()
                .rev()
                .find(|(s, _)| *s <= serial)
                .map_or("before".to_string(), |m| m.1.clone());
            (
                scenario,
                a["file"]["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    found.sort();
    let scenarios: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
    // D1 and D3 (root units), D2 (the user unit), and B1: the package's own enablement link, the
    // false positive the rule itself names ("legit service installs"). Never B2.
    assert_eq!(
        scenarios,
        ["B1", "D1", "D1", "D2", "D2", "D3", "D3"],
        "{found:?}"
    );
    assert!(found.contains(&(
        "D1".into(),
        "/etc/systemd/system/acme-updater.service".into()
    )));
    assert!(found.contains(&("D3".into(), "/etc/systemd/system/rsyslogd.service".into())));
}

/// Correlation rules run on the matches of the rules they name: a count per host within a time
/// span, and an ordered pair (a unit written, then systemctl run from a shell, on the same host).
#[test]
fn correlations_count_and_order_matches_per_group() {
    let dir = std::env::temp_dir().join(format!("unithunt-corr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("corr.yml");
    std::fs::write(&file, common::CORRELATIONS).unwrap();
    let alerts = scan(&[
        "--no-builtin",
        "--rules",
        file.to_str().unwrap(),
        "examples/atomic/ecs/adversary-tests.ndjson",
    ]);
    let by_name = |n: &str| {
        alerts
            .iter()
            .filter(|a| a["kibana.alert.rule.name"] == n)
            .collect::<Vec<_>>()
    };
    // The base rules do not alert on their own (no `generate`).
    assert!(
        by_name("Unit file written").is_empty() && by_name("systemctl from a shell").is_empty()
    );
    let counts = by_name("Three systemctl runs from shells on one host within 5 minutes");
    assert!(!counts.is_empty());
    for a in &counts {
        assert!(a["kibana.alert.correlation.value"].as_f64().unwrap() >= 3.0);
        assert_eq!(
            a["kibana.alert.correlation.group"]["host.name"],
            a["host"]["name"]
        );
        assert_eq!(a["kibana.alert.severity"], "high");
    }
    let ordered = by_name("A unit written, then systemctl from a shell, by one user on one host");
    // Root's unit then its reload, the user's unit then its reload, the syslogd lookalike then its
    // enable: one per adversary test that writes a unit and runs systemctl within a minute.
    assert_eq!(ordered.len(), 3, "{ordered:?}");
    assert!(ordered.iter().all(|a| a["process"]["name"] == "systemctl"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Correlations name fields in Sigma's taxonomy as SigmaHQ writes them (`group-by: [User]`,
/// `condition: {field: CommandLine}`): they go through the field mapping of the rules they refer
/// to, as pySigma's processing pipelines map correlation rules. Written in taxonomy names or in
/// ECS names, the same correlations raise the same alerts with the same groups.
#[test]
fn correlations_in_taxonomy_names_alert_as_in_ecs_names() {
    let base = r#"title: systemctl from a shell
name: shell_systemctl
logsource: {product: linux, category: process_creation}
detection:
    s: {Image|endswith: /systemctl, ParentImage|endswith: /bash}
    condition: s
"#;
    let correlations = |user: &str, command_line: &str| {
        format!(
            r#"{base}---
title: Two systemctl runs from shells by one user
id: 33333333-3333-4333-8333-333333333333
correlation:
    type: event_count
    rules: [shell_systemctl]
    group-by: [{user}]
    timespan: 1h
    condition: {{gte: 2}}
---
title: Two distinct systemctl command lines by one user
id: 44444444-4444-4444-8444-444444444444
correlation:
    type: value_count
    rules: [shell_systemctl]
    group-by: [{user}]
    timespan: 1h
    condition: {{gte: 2, field: {command_line}}}
"#
        )
    };
    let t = common::Tmp::new("sigma-corr-taxonomy");
    let run = |name: &str, text: String| {
        let file = t.file(name, text);
        let alerts = scan(&[
            "--no-builtin",
            "--rules",
            &file,
            "examples/atomic/ecs/adversary-tests.ndjson",
        ]);
        let mut out: Vec<(String, Vec<String>, f64)> = alerts
            .iter()
            .map(|a| {
                let group = a["kibana.alert.correlation.group"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                (
                    a["kibana.alert.rule.name"].as_str().unwrap().to_string(),
                    group,
                    a["kibana.alert.correlation.value"].as_f64().unwrap(),
                )
            })
            .collect();
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out
    };
    let taxonomy = run("taxonomy.yml", correlations("User", "CommandLine"));
    let ecs = run("ecs.yml", correlations("user.name", "process.command_line"));
    assert_eq!(taxonomy, ecs);
    assert!(
        taxonomy
            .iter()
            .any(|(n, _, _)| n.starts_with("Two systemctl"))
            && taxonomy
                .iter()
                .any(|(n, _, _)| n.starts_with("Two distinct")),
        "{taxonomy:?}"
    );
    assert!(
        taxonomy
            .iter()
            .all(|(_, g, _)| g.iter().all(|v| !v.is_empty())),
        "every group has a user: {taxonomy:?}"
    );
}

/// `rules convert` translates Sigma's regular expressions to Lucene's syntax exactly: for each
/// rule, the converted EQL run by `unithunt eql` returns exactly the events the Sigma rule alerts
/// on (anchors, `(?:`, `\d`, `\s`, `\w` in classes, lazy quantifiers, characters Lucene treats
/// as operators, `|i`); a pattern Lucene cannot say is refused with the reason.
#[test]
fn converted_regexes_select_the_events_the_sigma_rule_selects() {
    let t = common::Tmp::new("sigma-regex-convert");
    let exes = [
        "/usr/bin/systemctl",
        "/usr/bin/systemd-run",
        "/usr/bin/systemctl.bak",
        "/opt/SYSTEMCTL",
        "/tmp/a1b22c333",
        "/tmp/run me",
        "/tmp/x<y>@z#",
        "/usr/sbin/sshd",
    ];
    let events: String = exes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "{}\n",
                serde_json::json!({"@timestamp": format!("2026-01-01T00:00:{i:02}Z"),
                    "event": {"category": ["process"], "type": ["start"], "id": format!("e{i}")},
                    "process": {"executable": e, "name": e.rsplit('/').next()}})
            )
        })
        .collect();
    let data = t.file("events.ndjson", events);
    let patterns = [
        r"/system(ctl|d-run)$",
        r"^/usr/(?:s?bin)/ssh",
        r"\d{2}c\d+$",
        r"run\sme",
        r"^/tmp/[\w.-]+$",
        r"^/usr/bin/sys.*?ctl$",
        r"x<y>@z#",
    ];
    for (i, re) in patterns.iter().enumerate() {
        for flags in ["re", "re|i"] {
            let rule = format!(
                "title: r{i}\nid: 5f2f5f2f-0000-4000-8000-00000000000{i}\nlogsource: {{product: linux, category: process_creation}}\ndetection:\n    s: {{Image|{flags}: '{re}'}}\n    condition: s\n"
            );
            let file = t.file(&format!("r{i}.yml"), &rule);
            let mut sigma: Vec<String> = scan(&["--no-builtin", "--rules", &file, &data])
                .iter()
                .map(|a| a["event"]["id"].as_str().unwrap().to_string())
                .collect();
            sigma.sort();
            let (converted, _) = common::unithunt_ok(&["rules", "convert", &file]);
            let query = converted
                .lines()
                .find(|l| l.starts_with("any where"))
                .unwrap_or_else(|| panic!("{re}: {converted}"));
            let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
                .args(["eql", "--size", "100", query, &data])
                .current_dir(WORKSPACE)
                .output()
                .unwrap();
            let mut eql: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| {
                    serde_json::from_str::<Json>(l).unwrap()["event"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            eql.sort();
            assert_eq!(eql, sigma, "{re} ({flags}) as {query}");
        }
    }
    // Lucene has no word boundary (the Sigma engine, Rust's regex, has): refused, saying so.
    let file = t.file(
        "look.yml",
        "title: look\nlogsource: {product: linux, category: process_creation}\ndetection:\n    s: {Image|re: '\\bsshd\\b'}\n    condition: s\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["rules", "convert", &file])
        .current_dir(WORKSPACE)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("word boundary"), "{said}");
}

/// The events of each alert or result, by `event.id`, sorted.
fn event_ids<'a>(docs: impl Iterator<Item = &'a Json>) -> Vec<String> {
    let mut ids: Vec<String> = docs
        .map(|d| d["event"]["id"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    ids
}

/// A differential test of `rules convert` over SigmaHQ's Linux rules (peer data, read from
/// `../shared/peer/sigma`): every rule that converts selects, as EQL run by `unithunt eql`,
/// exactly the events it alerts on as Sigma, over the ECS adversary recording, the real auditd
/// recording (converted) and a generated corpus of systemd-relevant events.
#[test]
fn every_converted_sigmahq_linux_rule_selects_what_the_sigma_rule_alerts_on() {
    let t = common::Tmp::new("sigma-convert-differential");
    let (audit_ecs, _) = common::unithunt_ok(&["convert", recording()]);
    let mut generator = unithunt_corpus::Generator::new(&unithunt_corpus::Config {
        relevant_rate: 1.0,
        ..unithunt_corpus::Config::default()
    });
    let corpus: String = (0..1500)
        .map(|_| format!("{}\n", generator.next_event().0))
        .collect();
    let inputs = [
        "examples/atomic/ecs/adversary-tests.ndjson".to_string(),
        t.file("audit.ndjson", audit_ecs),
        t.file("corpus.ndjson", corpus),
    ];
    let root = std::path::Path::new(WORKSPACE).join(common::shared("peer/sigma/rules/linux"));
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut converted, mut firing) = (0, 0);
    for f in &files {
        let f = f.to_str().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
            .args(["rules", "convert", f])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(query) = text
            .lines()
            .find(|l| l.starts_with("any where") || l.starts_with("sequence"))
        else {
            continue;
        };
        converted += 1;
        let mut fired = false;
        for input in &inputs {
            let alerts = scan(&["--no-builtin", "--rules", f, input]);
            let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
                .args(["eql", "--size", "100000", query, input])
                .current_dir(WORKSPACE)
                .output()
                .unwrap();
            let results: Vec<Json> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            fired |= !alerts.is_empty();
            assert_eq!(
                event_ids(results.iter()),
                event_ids(alerts.iter()),
                "{f} over {input}: {query}"
            );
        }
        firing += usize::from(fired);
    }
    eprintln!(
        "{} SigmaHQ Linux rules, {converted} converted, {firing} alert on the inputs",
        files.len()
    );
    assert!(converted >= 150, "{converted} converted");
    assert!(
        firing >= 5,
        "only {firing} rules alert: the comparison says little"
    );
}
