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
    let (events, skipped) = convert(text);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for s in &skipped {
        let line = lines[s.line as usize - 1].trim_ascii();
        assert!(line.is_empty() || line.starts_with(b"#"), "{s:?}");
    }
    events
}

fn convert(text: &[u8]) -> (Vec<Json>, Vec<unithunt_readers::Skipped>) {
    let mut t = AuditTranscoder::new();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    t.feed(text, "raw", &mut out, &mut skipped);
    t.flush(&mut out);
    let events = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (events, skipped)
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
            let doc = without_raw_records(laurel.event(line.as_bytes()).unwrap().into_json());
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

/// Our decoded records (`auditd.records` of the ECS events), by (serial, lowercase type).
fn records_by_key(events: &[Json]) -> BTreeMap<(u64, String), Vec<serde_json::Map<String, Json>>> {
    let mut out: BTreeMap<(u64, String), Vec<_>> = BTreeMap::new();
    for e in events {
        let serial = e["event"]["sequence"].as_u64().unwrap();
        for r in e["auditd"]["records"].as_array().unwrap() {
            let r = r.as_object().unwrap().clone();
            let t = r["type"].as_str().unwrap().to_ascii_lowercase();
            out.entry((serial, t)).or_default().push(r);
        }
    }
    out
}

/// Where go-libaudit writes an interpretation instead of the value, and we keep the value (as
/// auditd's own ENRICHED format does): the pairs that still agree. Each is a documented
/// difference (docs/formats/auditd.md), not a disagreement.
fn same_meaning(key: &str, ours: &str, theirs: &str) -> bool {
    if ours == theirs {
        return true;
    }
    match key {
        // 4294967295 (-1) is "unset" for login uids and sessions.
        "auid" | "old-auid" | "ses" | "old-ses" | "uid" | "gid" | "euid" | "suid" | "fsuid"
        | "egid" | "sgid" | "fsgid" | "ouid" | "ogid" => ours == "4294967295" && theirs == "unset",
        // Failed syscalls: go-libaudit names the errno (`EINPROGRESS`), we keep `-115`.
        "exit" => {
            ours.starts_with('-')
                && ours[1..].bytes().all(|b| b.is_ascii_digit())
                && theirs.starts_with('E')
                && theirs.bytes().all(|b| b.is_ascii_uppercase())
        }
        _ => false,
    }
}

#[test]
fn go_libaudit_golden_records_agree_on_shared_fields() {
    let dir = peer("go-libaudit");
    let mut agreed = 0;
    let mut differ: Vec<String> = Vec::new();
    for (log, golden) in [(
        "auparse_testdata_audit-rhel7.log",
        "auparse_testdata_audit-rhel7.log.golden",
    )] {
        let (events, skipped) = convert(&std::fs::read(dir.join(log)).unwrap());
        let ours = records_by_key(&events);
        let theirs: Json =
            serde_json::from_slice(&std::fs::read(dir.join(golden)).unwrap()).unwrap();
        // The golden file has one entry per line, null where go-libaudit rejected the line: we
        // reject exactly those.
        let rejected: Vec<u64> = theirs
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_null())
            .map(|(i, _)| i as u64 + 1)
            .collect();
        let ours_rejected: Vec<u64> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(ours_rejected, rejected, "{skipped:?}");
        for rec in theirs.as_array().unwrap().iter().filter(|r| !r.is_null()) {
            let key = (
                rec["sequence"].as_u64().unwrap(),
                rec["record_type"].as_str().unwrap().to_string(),
            );
            let Some(candidates) = ours.get(&key) else {
                differ.push(format!("{log}: no record {key:?}"));
                continue;
            };
            for (k, v) in rec["data"].as_object().into_iter().flatten() {
                let theirs = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                // go-libaudit translates `arch` and `syscall` in place; we keep the numbers and
                // add the translations as ENRICHED logs do (`ARCH`, `SYSCALL`).
                let ours_key = match k.as_str() {
                    "arch" | "syscall" => k.to_ascii_uppercase(),
                    _ => k.clone(),
                };
                let mine: Vec<&str> = candidates
                    .iter()
                    .filter_map(|c| c.get(&ours_key).and_then(Json::as_str))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                if mine.iter().any(|m| same_meaning(k, m, &theirs)) {
                    agreed += 1;
                } else {
                    differ.push(format!(
                        "{log} {key:?} {k}: ours {mine:?}, theirs {theirs:?}"
                    ));
                }
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} agreed; differences:\n{}",
        agreed,
        differ.join("\n")
    );
    assert!(agreed > 300, "{agreed}");
}

/// The raw events of go-libaudit's aucoalesce test file: `  name: |` (or `>`) then the records,
/// indented. Read by hand: the files are that simple, and the project has no YAML parser yet.
fn aucoalesce_tests(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in yaml.lines() {
        if let Some(rest) = line.strip_prefix("  ") {
            if let Some(record) = rest.strip_prefix("  ") {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(record.trim());
                    last.1.push('\n');
                }
            } else if !rest.starts_with('#') {
                if let Some((name, _)) = rest.split_once(':') {
                    out.push((name.trim().to_string(), String::new()));
                }
            }
        }
    }
    out
}

/// go-libaudit's coalesced events (Auditbeat's shape) against our ECS, field by field where both
/// say something. Documented differences: `process.name` is the executable's file name for us (as
/// Elastic Defend has it) and `comm` for go-libaudit; ids of -1 are `unset` there.
#[test]
fn go_libaudit_coalesced_events_agree_on_shared_fields() {
    let dir = peer("go-libaudit");
    let mut agreed = 0;
    let mut differ: Vec<String> = Vec::new();
    for (yaml, golden) in [
        (
            "aucoalesce_testdata_ubuntu-16.10-linux-4.8.0.yaml",
            "aucoalesce_testdata_ubuntu-16.10-linux-4.8.0.json.golden",
        ),
        (
            "aucoalesce_testdata_ubuntu-24.04-linux-6.8.0.yaml",
            "aucoalesce_testdata_ubuntu-24.04-linux-6.8.0.json.golden",
        ),
    ] {
        let tests = aucoalesce_tests(&std::fs::read_to_string(dir.join(yaml)).unwrap());
        let golden: Json =
            serde_json::from_slice(&std::fs::read(dir.join(golden)).unwrap()).unwrap();
        for g in golden.as_array().unwrap() {
            let name = g["test_name"].as_str().unwrap();
            let raw = &tests
                .iter()
                .find(|t| t.0 == name)
                .unwrap_or_else(|| panic!("{name}"))
                .1;
            let events = raw_events(raw.as_bytes());
            assert_eq!(events.len(), 1, "{name}: {events:?}");
            let ours = &events[0];
            let theirs = &g["event"];
            let text = |v: &Json| match v {
                Json::String(s) => Some(s.clone()),
                Json::Null => None,
                other => Some(other.to_string()),
            };
            let comm = ours["auditd"]["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["type"] == "SYSCALL")
                .and_then(|r| r["comm"].as_str())
                .map(str::to_string);
            for (their_path, our_path) in [
                ("/process/pid", "/process/pid"),
                ("/process/ppid", "/process/parent/pid"),
                ("/process/exe", "/process/executable"),
                ("/process/cwd", "/process/working_directory"),
                ("/process/args", "/process/args"),
                ("/process/name", "/process/name"),
                ("/user/ids/uid", "/user/id"),
                ("/user/ids/euid", "/user/effective/id"),
                ("/user/ids/auid", "/user/audit/id"),
                ("/user/ids/gid", "/group/id"),
                ("/ecs/event/category", "/event/category"),
                ("/ecs/event/type", "/event/type"),
            ] {
                let (Some(t), Some(o)) = (theirs.pointer(their_path), ours.pointer(our_path))
                else {
                    continue;
                };
                let (Some(t), Some(o)) = (text(t), text(o)) else {
                    continue;
                };
                let explained = match their_path {
                    "/process/name" => Some(&t) == comm.as_ref(),
                    "/user/ids/auid" | "/user/ids/uid" => t == "unset" && o == "4294967295",
                    _ => false,
                };
                if t == o || explained {
                    agreed += 1;
                } else {
                    differ.push(format!("{name} {their_path}: ours {o}, theirs {t}"));
                }
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{agreed} agreed; differences:\n{}",
        differ.join("\n")
    );
    assert!(agreed > 60, "{agreed}");
}
