//! Field extraction against peers, on their real records (`../shared/peer/auditd-fixtures/`, read
//! in place, never copied):
//! - LAUREL: for every raw fixture with LAUREL's JSON beside it, our raw reader and our LAUREL
//!   reader give the same ECS for every event;
//! - go-libaudit: on the raw logs with golden files, every field both sides define agrees.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use unithunt_readers::auditd::AuditTranscoder;
use unithunt_readers::laurel::LaurelTranscoder;

fn peer(dir: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/peer/auditd-fixtures")
        .join(dir);
    assert!(
        p.is_dir(),
        "{} is missing: the shared peer fixtures must sit next to the repository",
        p.display()
    );
    p
}

/// The ECS events of a raw log. LAUREL's trace fixtures carry `#` comment lines (their test
/// harness's notes, not auditd output): those, and blank lines, are the only lines allowed to be
/// skipped.
fn raw_events(text: &[u8]) -> Vec<Json> {
    let mut t = AuditTranscoder::new();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    t.feed(text, "raw", &mut out, &mut skipped);
    t.flush(&mut out);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for s in &skipped {
        let line = lines[s.line as usize - 1].trim_ascii();
        assert!(line.is_empty() || line.starts_with(b"#"), "{s:?}");
    }
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn without_raw_records(mut doc: Json) -> Json {
    doc.as_object_mut().unwrap().remove("auditd");
    doc
}

#[test]
fn raw_and_laurel_readers_agree_on_laurels_fixtures() {
    let dir = peer("laurel");
    let mut pairs = 0;
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let json_path = entry.unwrap().path();
        if json_path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let txt = json_path.with_extension("txt");
        let raw: BTreeMap<String, Json> = raw_events(&std::fs::read(&txt).unwrap())
            .into_iter()
            .map(|d| {
                (
                    d["event"]["id"].as_str().unwrap().to_string(),
                    without_raw_records(d),
                )
            })
            .collect();
        let mut laurel = LaurelTranscoder::new();
        for line in std::fs::read_to_string(&json_path).unwrap().lines() {
            let doc = without_raw_records(laurel.event(line.as_bytes()).unwrap());
            let id = doc["event"]["id"].as_str().unwrap().to_string();
            let twin = raw.get(&id).unwrap_or_else(|| {
                panic!("{}: event {id} not in the raw log", json_path.display())
            });
            assert_eq!(&doc, twin, "{}: event {id}", json_path.display());
            compared += 1;
        }
        pairs += 1;
    }
    assert!(
        pairs >= 4 && compared >= 6,
        "{pairs} pairs, {compared} events"
    );
}

#[test]
fn every_laurel_raw_fixture_reads_without_a_skipped_line() {
    for entry in std::fs::read_dir(peer("laurel")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "txt") {
            let events = raw_events(&std::fs::read(&p).unwrap());
            assert!(!events.is_empty(), "{}", p.display());
        }
    }
}

/// LAUREL's multi-event traces (aarch64 and x86_64): forks and execs chain into ancestry.
#[test]
fn process_traces_give_parents_from_the_stream() {
    let events = raw_events(&std::fs::read(peer("laurel").join("fork-sleep-exec.txt")).unwrap());
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"]["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"fork") && actions.contains(&"exec"),
        "{actions:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["host"]["architecture"] == "aarch64"));
    // The demo's final execve("/bin/true") runs in an orphan (its parent exited; the kernel says
    // ppid 1, and so does the event). Before that, the orphan-to-be forked: its own fork was not
    // in the log, so it is known to run its parent's image, the demo program.
    let truth = events
        .iter()
        .find(|e| e["event"]["action"] == "exec" && e["process"]["executable"] == "/usr/bin/true")
        .expect("the exec of /bin/true");
    assert_eq!(truth["process"]["parent"]["pid"], 1);
    let fork = events
        .iter()
        .find(|e| {
            e["event"]["action"] == "fork"
                && e["process"]["parent"]["pid"] == truth["process"]["pid"]
        })
        .expect("the orphan's own fork");
    let demo = events
        .iter()
        .find(|e| e["event"]["action"] == "exec")
        .expect("the demo's exec");
    assert_eq!(
        fork["process"]["parent"]["name"], demo["process"]["name"],
        "{fork}"
    );

    let events = raw_events(&std::fs::read(peer("laurel").join("shell-proc-trace.txt")).unwrap());
    let with_parent = events
        .iter()
        .filter(|e| e["event"]["action"] == "exec" && e["process"]["parent"]["name"].is_string())
        .count();
    assert!(with_parent >= 2, "{with_parent}");
}
