//! Hostile text on its way out: what reaches a spreadsheet (CSV), a JSON reader or a terminal
//! must not act on it. Formula cells get a leading `'` (OWASP), JSON carries C1 and bidi
//! controls as `\uXXXX`, and the terminal never sees a raw ESC or BEL.

mod common;

use common::Tmp;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SEED_RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../rules/elastic/persistence_systemd_service_seed.toml"
);

/// An event the seed rule alerts on; `COMMAND` and `HOST` are replaced by each test.
const ENABLE: &str = r#"{"@timestamp":"2026-11-27T10:00:01Z","event":{"category":["process"],"type":["start"]},"process":{"name":"systemctl","args":["systemctl","enable","x"],"command_line":"COMMAND","parent":{"name":"bash"}},"host":{"name":"HOST"},"user":{"name":"root"}}"#;

/// 8-bit CSI and a right-to-left override, as JSON escapes (the input file stays ASCII).
const C1_BIDI_JSON: &str = r"x\u009b2J\u202ecod.exe";
const C1_BIDI: &str = "x\u{9b}2J\u{202e}cod.exe";

fn unithunt(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    assert!(
        o.status.code().is_some(),
        "{args:?} died of a signal: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn scan(args: &[&str]) -> Output {
    let mut all = vec!["scan", "--no-builtin", "--rules", SEED_RULE];
    all.extend(args);
    unithunt(&all)
}

fn event(command: &str, host: &str) -> String {
    ENABLE.replace("COMMAND", command).replace("HOST", host) + "\n"
}

/// The rows of CSV output (header first), as a spreadsheet would split them.
fn csv_rows(o: &Output) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&o.stdout[..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The cell of `column` (by header) in the first data row.
fn cell(rows: &[Vec<String>], column: &str) -> String {
    let at = rows[0].iter().position(|h| h == column).unwrap();
    rows[1][at].clone()
}

fn starts_a_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Neither stream holds a character a terminal would act on: no C0 but line breaks (ESC, BEL),
/// no C1, no bidi control or line separator.
fn assert_nothing_a_terminal_acts_on(o: &Output, what: &str) {
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let bad = text.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        });
        assert!(
            bad.is_none(),
            "{what}: raw {bad:?} on {stream}: {}",
            text.escape_debug()
        );
    }
}

/// JSON lines of stdout: every line parses, and C1/bidi controls are there as escapes.
fn json_lines(o: &Output, what: &str) -> Vec<Value> {
    assert_nothing_a_terminal_acts_on(o, what);
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(
        text.contains(r"\u009b") && text.contains(r"\u202e"),
        "{what}: {text}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}")))
        .collect()
}

#[test]
fn scan_csv_cells_that_start_a_formula_get_an_apostrophe() {
    let t = Tmp::new("scan-csv");
    let f = t.file(
        "e.ndjson",
        event("=cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"),
    );
    let o = scan(&["-o", "csv", &f]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = csv_rows(&o);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(cell(&rows, "process"), "'=cmd|' /C calc'!A0");
    assert_eq!(cell(&rows, "host"), "'-2+3+cmd|' /C calc'!A0");
    for c in &rows[1] {
        assert!(!starts_a_formula(c), "{c:?} in {rows:?}");
    }
}

/// A unit under a root, named and run as an attacker likes: a formula for a name, an
/// executable in /tmp (so the reasons have weights), C1 and bidi controls in the command.
fn hostile_unit(t: &Tmp) {
    t.file(
        "etc/systemd/system/=calc.service",
        format!("[Service]\nExecStart=/tmp/{C1_BIDI}\n\n[Install]\nWantedBy=multi-user.target\n"),
    );
}

#[test]
fn hunt_csv_reasons_and_names_never_start_a_formula() {
    let t = Tmp::new("hunt-csv");
    hostile_unit(&t);
    let o = unithunt(&[
        "hunt",
        "--root",
        t.dir(),
        "-o",
        "csv",
        "--min-severity",
        "info",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_nothing_a_terminal_acts_on(&o, "hunt -o csv");
    let rows = csv_rows(&o);
    let unit = rows[0].iter().position(|h| h == "unit").unwrap();
    let row = rows
        .iter()
        .find(|r| r[unit].contains("calc.service"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row[unit], "'=calc.service");
    let reasons = &row[rows[0].iter().position(|h| h == "reasons").unwrap()];
    assert!(reasons.contains("(+"), "weights are still shown: {reasons}");
    for c in row {
        assert!(!starts_a_formula(c), "{c:?} in {row:?}");
    }
}

#[test]
fn hunt_json_carries_c1_and_bidi_controls_escaped() {
    let t = Tmp::new("hunt-json");
    hostile_unit(&t);
    let base = t.0.join("baseline.json");
    let o = unithunt(&[
        "hunt",
        "--root",
        t.dir(),
        "-o",
        "ndjson",
        "--min-severity",
        "info",
        "--save-baseline",
        base.to_str().unwrap(),
    ]);
    let findings = json_lines(&o, "hunt -o ndjson");
    let unit = findings
        .iter()
        .find(|f| f["unit"] == "=calc.service")
        .unwrap();
    assert!(
        unit["exec"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/tmp/{C1_BIDI}")),
        "the same value read back: {unit}"
    );
    let baseline = std::fs::read_to_string(&base).unwrap();
    assert!(!baseline.contains('\u{9b}') && !baseline.contains('\u{202e}'));
    serde_json::from_str::<Value>(&baseline).expect("the baseline is JSON");
    let o = unithunt(&[
        "hunt",
        "--root",
        t.dir(),
        "-o",
        "json",
        "--min-severity",
        "info",
    ]);
    let all = json_lines(&o, "hunt -o json");
    assert!(all[0].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn scan_json_and_ndjson_carry_c1_and_bidi_controls_escaped() {
    let t = Tmp::new("scan-json");
    let f = t.file("e.ndjson", event(C1_BIDI_JSON, C1_BIDI_JSON));
    for format in ["ndjson", "json"] {
        let o = scan(&["-o", format, &f]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let what = format!("scan -o {format}");
        let alert = if format == "json" {
            assert_nothing_a_terminal_acts_on(&o, &what);
            let all: Value = serde_json::from_slice(&o.stdout).expect("one JSON array");
            all[0].clone()
        } else {
            json_lines(&o, &what).remove(0)
        };
        assert_eq!(alert["process"]["command_line"], C1_BIDI, "{what}");
        assert_eq!(alert["host"]["name"], C1_BIDI, "{what}");
    }
}

#[test]
fn eql_results_carry_c1_and_bidi_controls_escaped() {
    let t = Tmp::new("eql");
    let f = t.file("e.ndjson", event(C1_BIDI_JSON, "h"));
    let o = unithunt(&["eql", "process where process.name == \"systemctl\"", &f]);
    let docs = json_lines(&o, "eql");
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["process"]["command_line"], C1_BIDI);
    let o = unithunt(&[
        "eql",
        "sequence [process where true] [process where true]",
        &f,
        &f,
    ]);
    for seq in json_lines(&o, "eql sequence") {
        assert_eq!(seq["events"][0]["process"]["command_line"], C1_BIDI);
    }
}

#[test]
fn convert_output_carries_c1_and_bidi_controls_escaped() {
    let t = Tmp::new("convert");
    // An execve whose second argument is hex-encoded, as auditd writes arguments with bytes
    // outside printable ASCII: "enable", U+009B, U+202E, "x" in UTF-8.
    let hex: String = format!("enable{C1_BIDI}")
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect();
    let log = format!(
        "type=SYSCALL msg=audit(1795806430.136:6399): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=22865 pid=22866 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm=\"systemctl\" exe=\"/usr/bin/systemctl\" key=\"exec\"\n\
         type=EXECVE msg=audit(1795806430.136:6399): argc=2 a0=\"systemctl\" a1={hex}\n\
         type=PATH msg=audit(1795806430.136:6399): item=0 name=\"/usr/bin/systemctl\" inode=1 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL\n\
         type=EOE msg=audit(1795806430.136:6399):\n"
    );
    let f = t.file("audit.log", log);
    let o = unithunt(&["convert", &f]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let events = json_lines(&o, "convert");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["process"]["args"][1],
        format!("enable{C1_BIDI}"),
        "{}",
        events[0]
    );
}

#[test]
fn rules_convert_prints_no_raw_esc_or_bel() {
    let t = Tmp::new("rules-convert");
    let rule = t.file(
        "r.yml",
        "title: \"evil\\e[2J\\a title\"\n\
         id: 2b6c4e27-0000-4000-8000-000000000001\n\
         logsource:\n  product: linux\n  category: process_creation\n\
         detection:\n  sel:\n    CommandLine|contains: \"\\e]0;pwned\\a\"\n  condition: sel\n",
    );
    let o = unithunt(&["rules", "convert", &rule]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_nothing_a_terminal_acts_on(&o, "rules convert");
    let text = String::from_utf8_lossy(&o.stdout);
    // The value is in the query as EQL's own escape: the same string to Elasticsearch.
    assert!(text.contains(r"\u{1b}]0;pwned\u{07}"), "{text}");
}

/// Answers every request with a 500 whose body tries to clear the screen and ring the bell;
/// counts the requests.
fn serve_errors(
    listener: std::net::TcpListener,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        // The request is read (whole or not) before the error goes back.
        let _ = common::read_http_request(&mut s);
        let reply = "boom\x1b[2J\x1b]0;pwned\x07\u{9b}31m";
        let _ = s.write_all(
            format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .as_bytes(),
        );
        served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn http_error_bodies_reach_stderr_escaped() {
    let t = Tmp::new("http");
    let log = t.file("events.ndjson", event("systemctl enable x", "h"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let served = served.clone();
        std::thread::spawn(move || serve_errors(listener, served));
    }
    let child = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args([
            "watch",
            &log,
            "--checkpoint",
            t.0.join("state/cp").to_str().unwrap(),
            "--input-format",
            "ecs",
            "--from-start",
            "-o",
            "none",
            "--http",
            &format!("http://127.0.0.1:{port}/_bulk"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        served.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the sink never posted"
    );
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("status 500: boom"), "{stderr}");
    assert!(
        stderr.contains(r"\u{1b}[2J"),
        "the body is shown escaped: {stderr}"
    );
    assert_nothing_a_terminal_acts_on(&o, "watch --http");
}
