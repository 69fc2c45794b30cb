//! The seed rule over a real auditd recording (`../shared/samples/auditd/dev-enriched.log`, see its
//! README): per scenario, which events alert, and the summary accounts for every line.
//!
//! Scenarios are found in the data itself: each begins with the EXECVE of
//! `/bin/echo UNITHUNT-SCENARIO <id> ...`, so an event belongs to the last marker before it (by
//! audit serial).

mod common;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::process::Command;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The real auditd recording of the adversary tests (peer data: tests/common `shared`).
fn recording() -> &'static str {
    common::shared("samples/auditd/dev-enriched.log")
}
const SEED_RULE: &str = "rules/elastic/persistence_systemd_service_seed.toml";

fn run(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .current_dir(WORKSPACE)
        .output()
        .expect("binary runs");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

fn ndjson(text: &str) -> Vec<Json> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Serial where each scenario begins, from the marker execs.
fn scenarios(events: &[Json]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e["process"]["args"][1] == "UNITHUNT-SCENARIO")
        .map(|e| {
            (
                e["event"]["sequence"].as_u64().unwrap(),
                e["process"]["args"][2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn scenario_of(marks: &[(u64, String)], serial: u64) -> String {
    marks
        .iter()
        .rev()
        .find(|(s, _)| *s <= serial)
        .map_or("before".into(), |m| m.1.clone())
}

#[test]
fn the_seed_rule_alerts_in_every_malicious_scenario_and_in_no_benign_one() {
    let (converted, _, code) = run(&["convert", recording()]);
    assert_eq!(code, 0);
    let events = ndjson(&converted);
    let marks = scenarios(&events);
    let ids: Vec<&str> = marks.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids, ["D1", "D2", "D3", "D4", "B1", "B2", "CLEANUP"]);

    let (alerts, summary, code) = run(&[
        "scan",
        "-o",
        "ndjson",
        "--no-builtin",
        "--rules",
        SEED_RULE,
        recording(),
    ]);
    assert_eq!(code, 0, "{summary}");
    let mut by_scenario: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in ndjson(&alerts) {
        let serial = a["event"]["sequence"].as_u64().unwrap();
        let what = match a["event"]["category"][0].as_str() {
            Some("file") => format!("{} {}", a["event"]["action"], a["file"]["path"]),
            _ => format!("exec {}", a["process"]["command_line"]),
        };
        by_scenario
            .entry(scenario_of(&marks, serial))
            .or_default()
            .push(what.replace('"', ""));
    }
    let unit = "/etc/systemd/system/acme-updater.service";
    let expected: BTreeMap<String, Vec<String>> = [
        (
            "D1",
            vec![
                format!("creation {unit}"),
                format!("modification {unit}"),
                format!("modification {unit}"),
                format!("modification {unit}"),
                format!("modification {unit}"),
                format!("modification {unit}"),
                "exec systemctl daemon-reload".into(),
                "exec systemctl enable acme-updater.service".into(),
                // `systemctl start` was the shell's last command: bash exec'd it in place, so its
                // parent is the shell's parent (not recorded), as Elastic Defend would show it.
            ],
        ),
        (
            "D2",
            vec![
                "creation /home/unitu/.config/systemd/user/acme-user.service".into(),
                "exec systemctl --user daemon-reload".into(),
                "exec systemctl --user enable acme-user.service".into(),
            ],
        ),
        (
            "D3",
            vec!["creation /etc/systemd/system/rsyslogd.service".into()],
        ),
        // The generator and what it writes are the seed rule's blind spot; the reload is not.
        ("D4", vec!["exec systemctl daemon-reload".into()]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_scenario, expected);

    // Every line accounted for: the 1,397 records all belong to events, none skipped.
    let lines = std::fs::read_to_string(std::path::Path::new(WORKSPACE).join(recording()))
        .unwrap()
        .lines()
        .count();
    assert!(
        summary.contains(&format!("{lines} lines:")) && summary.contains(" 0 skipped;"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "{lines} source record(s) (audit, LAUREL, Sysmon, Defender) made {} event(s)",
            events.len()
        )),
        "{summary}"
    );
    assert!(summary.contains("read as auditd (sniffed)"), "{summary}");
}

#[test]
fn ancestry_reaches_past_the_direct_parent() {
    let (converted, _, _) = run(&["convert", recording()]);
    let events = ndjson(&converted);
    // D2: the user's `systemctl --user enable` ran from bash, which runuser started.
    let enable = events
        .iter()
        .find(|e| e["process"]["command_line"] == "systemctl --user enable acme-user.service")
        .expect("the D2 enable exec");
    assert_eq!(enable["process"]["parent"]["name"], "bash");
    assert_eq!(
        enable["process"]["Ext"]["ancestry_names"],
        serde_json::json!(["bash", "runuser"])
    );
    assert_eq!(enable["user"]["name"], "unitu");
    // B1: deb-systemd-helper's systemctl call, four levels below apt-get.
    let preset = events
        .iter()
        .find(|e| {
            e["process"]["name"] == "systemctl"
                && e["process"]["args"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "preset"))
        })
        .expect("the B1 preset exec");
    assert_eq!(
        preset["process"]["Ext"]["ancestry_names"],
        serde_json::json!(["perl", "dash", "dpkg", "apt-get"])
    );
    // dpkg's rename of the unpacked unit into place is the creation of the final name.
    let rename = events
        .iter()
        .find(|e| {
            e["event"]["action"] == "rename"
                && e["file"]["path"] == "/lib/systemd/system/atd.service"
        })
        .expect("dpkg's rename");
    assert_eq!(
        rename["event"]["type"],
        serde_json::json!(["creation", "change"])
    );
    assert_eq!(
        rename["file"]["Ext"]["original"]["path"],
        "/lib/systemd/system/atd.service.dpkg-new"
    );
    assert_eq!(rename["process"]["name"], "dpkg");
}

/// A scan of an audit log decides most events before writing them (only the members rules read are
/// made, and an event is written only if a rule may match it). That must change nothing: the same
/// alerts, and the same events counted, as scanning the log's full conversion as ECS NDJSON — for
/// the built-in pack and for Elastic's Linux rules, which read many more fields.
#[test]
fn screening_events_before_writing_them_changes_no_alert() {
    let dir = std::env::temp_dir().join(format!("unithunt-screen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ecs = dir.join("recording.ecs.ndjson");
    let (converted, _, code) = run(&["convert", recording()]);
    assert_eq!(code, 0);
    std::fs::write(&ecs, &converted).unwrap();
    let events = converted.lines().count();
    let elastic = common::shared("peer/elastic-detection-rules/rules/linux");
    let packs: Vec<Vec<&str>> = vec![vec![], vec!["--no-builtin", "--rules", elastic]];
    let key = |a: &Json| {
        format!(
            "{} {}",
            a["kibana.alert.rule.rule_id"], a["kibana.alert.original_event.id"]
        )
    };
    for pack in packs {
        let scan = |input: &str| {
            let mut args = vec!["scan", "-o", "ndjson", "-j", "1"];
            args.extend(&pack);
            args.push(input);
            let (alerts, summary, code) = run(&args);
            assert_eq!(code, 0, "{summary}");
            let mut keys: Vec<String> = ndjson(&alerts).iter().map(key).collect();
            keys.sort();
            (keys, summary)
        };
        let (screened, summary) = scan(recording());
        let (whole, _) = scan(ecs.to_str().unwrap());
        assert_eq!(screened, whole, "{pack:?}");
        assert!(
            summary.contains(&format!("made {events} event(s)")),
            "{summary}"
        );
        // The comparison has teeth: each pack alerts on this recording (Elastic's own
        // "Systemd Service Created" and "Systemd Generator Created" among others).
        assert!(!screened.is_empty(), "{pack:?}: {summary}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The default pack (the seed reference rule and the rules that close its gaps) on the recording:
/// every malicious scenario alerts, each through the rules that cover its technique, and neither
/// benign one (a package install with its maintainer scripts and deb-systemd-helper; an admin
/// reading state with systemctl) raises anything.
#[test]
fn the_default_pack_alerts_in_d1_to_d4_and_never_in_b1_or_b2() {
    let (converted, _, code) = run(&["convert", recording()]);
    assert_eq!(code, 0);
    let marks = scenarios(&ndjson(&converted));
    let (alerts, summary, code) = run(&["scan", "-o", "ndjson", recording()]);
    assert_eq!(code, 0, "{summary}");
    let mut rules_by_scenario: BTreeMap<String, std::collections::BTreeSet<String>> =
        BTreeMap::new();
    for a in ndjson(&alerts) {
        // Sequence alerts: the shell has no event of its own; its building blocks do.
        let Some(serial) = a["event"]["sequence"].as_u64() else {
            continue;
        };
        rules_by_scenario
            .entry(scenario_of(&marks, serial))
            .or_default()
            .insert(a["kibana.alert.rule.name"].as_str().unwrap().to_string());
    }
    let has = |scenario: &str, rule: &str| {
        rules_by_scenario
            .get(scenario)
            .is_some_and(|r| r.contains(rule))
    };
    let written = "Systemd Unit or Drop-in Written Outside Package Management";
    let sequence = "Systemd Unit Written Then Activated";
    for d in ["D1", "D2", "D3"] {
        assert!(has(d, written), "{d}: {rules_by_scenario:?}");
        assert!(has(d, sequence), "{d}: {rules_by_scenario:?}");
    }
    assert!(has("D3", "Systemd Unit Named Like a Well-Known Service"));
    assert!(has(
        "D4",
        "Systemd Generator or Environment Generator Written"
    ));
    assert!(has("D4", sequence));
    // The generator's own output (written by the generator run as systemd would run it).
    assert!(has("D4", written));
    assert!(!has("D1", "Systemd Unit Named Like a Well-Known Service"));
    for b in ["B1", "B2"] {
        assert!(
            !rules_by_scenario.contains_key(b),
            "{b}: {:?}",
            rules_by_scenario.get(b)
        );
    }
}
