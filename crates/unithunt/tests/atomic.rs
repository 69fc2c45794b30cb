//! `unithunt atomic`, end to end (the parts that do not change the system; `atomic verify`, which
//! does, runs in `.ci/run` as root).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn unithunt(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let input = stdin.unwrap_or_default().to_vec();
    let mut w = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || drop(w.write_all(&input)));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The rules that alert on a test's emitted ECS events.
fn rules_on(id: &str, format: &str) -> Vec<String> {
    let emitted = unithunt(&["atomic", "emit", id, "--format", format], None);
    assert_eq!(emitted.status.code(), Some(0));
    assert!(!emitted.stdout.is_empty());
    let scanned = unithunt(&["scan", "-q", "-o", "ndjson", "-"], Some(&emitted.stdout));
    let mut rules: Vec<String> = text(&scanned)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kibana.alert.rule.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

#[test]
fn list_and_show_describe_the_seed_tests() {
    let list = text(&unithunt(&["atomic", "list"], None));
    let ids: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "B1", "B2"]);
    let show = text(&unithunt(&["atomic", "show", "3"], None));
    for part in [
        "syslogd.service",
        "Expected signal:",
        "auditd",
        "Defender for Endpoint",
        "Systemd Unit Named Like a Well-Known Service",
    ] {
        assert!(show.contains(part), "{part}\n{show}");
    }
    let o = unithunt(&["atomic", "show", "9"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn emitted_telemetry_alerts_as_each_test_says() {
    // Raw audit records, their ECS mapping and the LAUREL, Sysmon and Defender renderings: each
    // malicious test is caught by the rules it names, and the benign ones stay quiet.
    for format in ["auditd", "ecs", "laurel", "sysmon", "mde"] {
        let generator = rules_on("4", format);
        assert!(
            generator.contains(&"Systemd Generator or Environment Generator Written".to_string()),
            "{format}: {generator:?}"
        );
        let lookalike = rules_on("3", format);
        assert!(
            lookalike.contains(&"Systemd Unit Named Like a Well-Known Service".to_string()),
            "{format}: {lookalike:?}"
        );
        for id in ["1", "2"] {
            let r = rules_on(id, format);
            assert!(
                r.contains(&"Systemd Unit Written Then Activated".to_string()),
                "{id} {format}: {r:?}"
            );
        }
        assert_eq!(rules_on("B1", format), Vec::<String>::new(), "{format}");
        assert_eq!(rules_on("B2", format), Vec::<String>::new(), "{format}");
    }
}

#[test]
fn run_asks_before_changing_the_system_and_plays_into_a_root() {
    let o = unithunt(&["atomic", "run", "1"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    let o = unithunt(&["atomic", "run", "B1", "--yes"], None);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the package install is not played"
    );
    let root = std::env::temp_dir().join(format!("unithunt-atomic-cli-{}", std::process::id()));
    let r = root.to_str().unwrap();
    for id in ["1", "2", "3", "4"] {
        let o = unithunt(&["atomic", "run", id, "--root", r], None);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for path in [
        "etc/systemd/system/unithunt-atomic-root.service",
        "home/unithunt-atomic/.config/systemd/user/unithunt-atomic-user.service",
        "etc/systemd/system/syslogd.service",
        "usr/local/lib/systemd/system-generators/unithunt-atomic-gen",
        "run/systemd/generator/unithunt-atomic-gen.service",
    ] {
        assert!(root.join(path).is_file(), "{path}");
    }
    let _ = std::fs::remove_dir_all(&root);
    let o = unithunt(&["atomic", "verify"], None);
    assert_eq!(o.status.code(), Some(2), "verify asks for --yes too");
}

#[test]
fn the_coverage_matrix_detects_every_test_in_every_format_and_is_current() {
    let o = unithunt(&["rules", "coverage"], None);
    assert_eq!(o.status.code(), Some(0));
    let md = text(&o);
    let (tests, techniques) = md.split_once("## Every technique").expect("two tables");
    let rows: Vec<&str> = tests
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| test"))
        .collect();
    // Six tests in six formats, plus three benign twins of the Elastic Defend fixtures.
    assert_eq!(rows.len(), 6 * 6 + 3, "{md}");
    for row in &rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (test, verdict) = (cells[1], cells[cells.len() - 2]);
        if test.ends_with("(benign)") {
            if test.starts_with("B1") || test.starts_with("B2") {
                assert_eq!(verdict, "quiet", "{row}");
            }
        } else {
            assert_eq!(verdict, "detected", "{row}");
        }
    }
    // Every recorded technique is caught by the rule that covers it (its "must" column).
    let (recorded, per_format) = techniques
        .split_once("### Every technique in every format")
        .expect("the per-format table");
    let rows_of = |table: &str| -> Vec<Vec<String>> {
        table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| technique"))
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .collect()
    };
    let technique_rows = rows_of(recorded);
    assert_eq!(technique_rows.len(), 21, "{techniques}");
    for cells in &technique_rows {
        let must: usize = cells[3].parse().unwrap();
        assert_eq!(cells[4 + must], "**A**", "{cells:?}");
    }
    // And in every format that can show it; where one cannot, the matrix says why.
    let format_rows = rows_of(per_format);
    assert_eq!(format_rows.len(), 21, "{per_format}");
    let mut not_shown = 0;
    for cells in &format_rows {
        for cell in &cells[3..cells.len() - 1] {
            if cell.starts_with("n/a (") {
                not_shown += 1;
            } else {
                assert_eq!(cell, "**A**", "{cells:?}");
            }
        }
    }
    // Sysmon misses five write techniques, the others both links, Elastic Defend the ancestry.
    assert_eq!(not_shown, 5 + 3 * 2 + 1, "{per_format}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/coverage.md"
    ))
    .unwrap();
    assert_eq!(
        committed, md,
        "docs/coverage.md is out of date: run `unithunt rules coverage > docs/coverage.md`"
    );
}
