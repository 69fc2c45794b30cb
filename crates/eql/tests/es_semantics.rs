//! End-to-end checks of Elasticsearch EQL semantics: query text is compiled with the default
//! (Elasticsearch) options and run over hand-made ECS events.

use serde_json::{json, Value as Json};
use std::sync::Arc;
use unithunt_engine::{Output, RunOptions, Runner};
use unithunt_eql::{compile, EqlOptions, Query};

/// One second, in nanoseconds.
const S: i64 = 1_000_000_000;

fn query(text: &str) -> Query {
    compile(text, &EqlOptions::default()).unwrap_or_else(|e| panic!("{}", e.render(text, "query")))
}

/// Runs `text` over `(timestamp ns, event)` pairs, in order.
fn run(text: &str, events: &[(i64, Json)]) -> Vec<Output> {
    let q = query(text);
    let mut runner = Runner::new(&q, RunOptions::default());
    for (ts, ev) in events {
        let doc = Arc::new(ev.clone());
        let mask = runner.evaluate(&doc);
        runner.advance(doc, *ts, mask);
    }
    runner.finish().outputs
}

fn id_of(doc: &Json) -> i64 {
    doc["id"]
        .as_i64()
        .expect("every test event has an integer `id`")
}

/// An event query over events one second apart: the ids of the matches.
fn ids(text: &str, events: Vec<Json>) -> Vec<i64> {
    let timed: Vec<(i64, Json)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as i64 * S, e))
        .collect();
    run(text, &timed)
        .iter()
        .map(|o| match o {
            Output::Event(e) => id_of(e),
            other => panic!("expected single events, got {other:?}"),
        })
        .collect()
}

/// A sequence or sample: per result, the ids of its events (`None` for a missing event).
fn seqs(text: &str, events: Vec<(i64, Json)>) -> Vec<Vec<Option<i64>>> {
    run(text, &events)
        .iter()
        .map(|o| match o {
            Output::Sequence { events, .. } => {
                events.iter().map(|e| e.as_deref().map(id_of)).collect()
            }
            other => panic!("expected sequences, got {other:?}"),
        })
        .collect()
}

/// Whether a single event matches (it gets id 0).
fn hit(text: &str, mut ev: Json) -> bool {
    ev["id"] = json!(0);
    match ids(text, vec![ev]).as_slice() {
        [] => false,
        [0] => true,
        other => panic!("unexpected matches {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The seed rule

const SEED: &str = r#"any where
  (event.category == "file" and event.type in ("creation","change") and
   file.path : ("/etc/systemd/system/*","/lib/systemd/system/*","/usr/lib/systemd/system/*",
                "/run/systemd/system/*","*/.config/systemd/user/*") and
   file.extension == "service" and
   not process.name : ("dpkg","rpm","apt","yum","systemd","systemctl","ansible*","puppet*","chef*")) or
  (event.category == "process" and event.type == "start" and
   process.name == "systemctl" and
   process.args : ("enable","start","daemon-reload") and
   process.parent.name : ("bash","sh","dash","zsh","python*","perl","ruby","curl","wget"))
"#;

fn unit_file(path: &str, writer: Option<&str>) -> Json {
    let mut ev = json!({
        "event": {"category": ["file"], "type": ["creation"]},
        "file": {"path": path, "extension": "service"},
        "process": {"pid": 4242},
    });
    if let Some(name) = writer {
        ev["process"]["name"] = json!(name);
    }
    ev
}

fn systemctl(args: &[&str], parent: &str) -> Json {
    json!({
        "event": {"category": ["process"], "type": ["start"]},
        "process": {"name": "systemctl", "args": args, "parent": {"name": parent}},
    })
}

#[test]
fn seed_rule_file_branch() {
    let evil = "/etc/systemd/system/evil.service";
    assert!(hit(SEED, unit_file(evil, Some("bash"))));
    assert!(
        !hit(SEED, unit_file(evil, Some("dpkg"))),
        "package managers are excluded"
    );
    assert!(
        !hit(SEED, unit_file(evil, Some("ansible-playbook"))),
        "ansible* is excluded"
    );
    assert!(
        hit(SEED, unit_file(evil, None)),
        "must_not holds when process.name is missing"
    );
    assert!(hit(
        SEED,
        unit_file("/home/eve/.config/systemd/user/x.service", Some("bash"))
    ));
    assert!(
        !hit(SEED, unit_file("/etc/systemd/evil.service", Some("bash"))),
        "not under system/"
    );
    let mut change = unit_file(evil, Some("vim"));
    change["event"]["type"] = json!(["change", "info"]);
    assert!(hit(SEED, change), "event.type is multi-valued");
    let mut deletion = unit_file(evil, Some("bash"));
    deletion["event"]["type"] = json!(["deletion"]);
    assert!(!hit(SEED, deletion));
    let mut conf = unit_file(evil, Some("bash"));
    conf["file"]["extension"] = json!("conf");
    assert!(!hit(SEED, conf));
}

#[test]
fn seed_rule_process_branch() {
    assert!(hit(
        SEED,
        systemctl(&["systemctl", "enable", "x.service"], "bash")
    ));
    assert!(!hit(
        SEED,
        systemctl(&["systemctl", "enable", "x.service"], "systemd")
    ));
    assert!(
        hit(
            SEED,
            systemctl(&["systemctl", "daemon-reload"], "python3.11")
        ),
        "python*"
    );
    assert!(
        !hit(
            SEED,
            systemctl(&["systemctl", "status", "x.service"], "bash")
        ),
        "status is not listed"
    );
    let mut stop = systemctl(&["systemctl", "start", "x"], "sh");
    stop["event"]["type"] = json!(["end"]);
    assert!(!hit(SEED, stop));
}

// ---------------------------------------------------------------------------------------------
// 2. Null logic: negations are Query DSL must_not, so they hold on missing fields.

#[test]
fn null_logic() {
    let missing = json!({"event": {"category": "process"}, "process": {"pid": 1}});
    let dpkg = json!({"process": {"name": "dpkg"}});
    assert!(hit(
        r#"any where not process.name : "dpkg""#,
        missing.clone()
    ));
    assert!(!hit(r#"any where not process.name : "dpkg""#, dpkg.clone()));
    assert!(hit(r#"any where process.name != "dpkg""#, missing.clone()));
    assert!(!hit(r#"any where process.name != "dpkg""#, dpkg.clone()));
    assert!(hit("any where process.name == null", missing.clone()));
    assert!(!hit("any where process.name == null", dpkg.clone()));
    assert!(!hit("any where process.name != null", missing.clone()));
    assert!(hit("any where process.name != null", dpkg.clone()));
    assert!(
        hit(
            "any where process.name == null",
            json!({"process": {"name": null}})
        ),
        "null is not indexed"
    );
    assert!(hit(
        r#"any where not process.name in ("a")"#,
        missing.clone()
    ));
    assert!(hit(
        r#"any where process.name not in ("a")"#,
        missing.clone()
    ));
    assert!(!hit(
        r#"any where process.name not in ("a")"#,
        json!({"process": {"name": "a"}})
    ));
    assert!(!hit(r#"any where process.name in ("a")"#, missing.clone()));
    assert!(
        !hit("any where process.pid < 0", json!({})),
        "ordering with a missing field is false"
    );
    assert!(hit("any where not process.pid < 0", json!({})));
}

// ---------------------------------------------------------------------------------------------
// 3. Multi-valued fields: a leaf holds when any value does.

#[test]
fn arrays_match_any_value() {
    let enable = json!({"process": {"args": ["systemctl", "enable", "x.service"]}});
    let status = json!({"process": {"args": ["systemctl", "status", "x.service"]}});
    assert!(hit(r#"any where process.args == "enable""#, enable.clone()));
    assert!(!hit(
        r#"any where process.args == "enable""#,
        status.clone()
    ));
    assert!(
        !hit(r#"any where process.args != "enable""#, enable.clone()),
        "one element equals"
    );
    assert!(hit(r#"any where process.args != "enable""#, status.clone()));
    assert!(hit(r#"any where process.args : "ENA*""#, enable.clone()));
    assert!(!hit(r#"any where process.args : "ENA*""#, status));
    assert!(hit(r#"any where process.args in ("x", "enable")"#, enable));
}

// ---------------------------------------------------------------------------------------------
// 4. Case sensitivity

#[test]
fn case_sensitivity() {
    let bash = || json!({"process": {"name": "bash"}});
    assert!(!hit(r#"any where process.name == "Bash""#, bash()));
    assert!(hit(r#"any where process.name == "bash""#, bash()));
    assert!(hit(r#"any where process.name : "BASH""#, bash()));
    assert!(hit(r#"any where process.name in~ ("BASH")"#, bash()));
    assert!(!hit(r#"any where process.name in ("BASH")"#, bash()));
    assert!(hit(r#"any where startsWith~(process.name, "BA")"#, bash()));
    assert!(!hit(r#"any where startsWith(process.name, "BA")"#, bash()));
    assert!(hit(r#"any where endsWith~(process.name, "SH")"#, bash()));
    assert!(hit(
        r#"any where stringContains~(process.name, "AS")"#,
        bash()
    ));
    assert!(!hit(r#"any where process.name like "BA*""#, bash()));
    assert!(hit(r#"any where process.name like~ "BA*""#, bash()));
    assert!(hit(r#"any where process.name like "ba*""#, bash()));
}

// ---------------------------------------------------------------------------------------------
// 5. Wildcards

#[test]
fn wildcards() {
    let name = |n: &str| json!({"process": {"name": n}});
    for q in [
        r#"any where process.name : "ba?h""#,
        r#"any where process.name like "ba?h""#,
    ] {
        assert!(hit(q, name("bash")), "{q}");
        assert!(!hit(q, name("bah")), "{q}: ? is exactly one character");
        assert!(!hit(q, name("basssh")), "{q}");
    }
    assert!(hit(r#"any where process.name : "*as*""#, name("bash")));
    let path = |p: &str| json!({"file": {"path": p}});
    assert!(
        !hit(r#"any where file.path == "/etc/*""#, path("/etc/x")),
        "== has no wildcards"
    );
    assert!(hit(r#"any where file.path == "/etc/*""#, path("/etc/*")));
    assert!(hit(r#"any where file.path : "/etc/*""#, path("/etc/x")));
}

// ---------------------------------------------------------------------------------------------
// 6. Strings, escapes, quoted field names and comments

#[test]
fn escapes_quoting_and_comments() {
    assert!(hit(r#"any where x == "a\"b""#, json!({"x": "a\"b"})));
    assert!(hit(r#"any where x == "\t""#, json!({"x": "\t"})));
    assert!(!hit(r#"any where x == "\t""#, json!({"x": "\\t"})));
    assert!(hit(
        r#"any where x == """C:\raw\path""""#,
        json!({"x": r"C:\raw\path"})
    ));
    assert!(hit(r#"any where x == "\u{41}""#, json!({"x": "A"})));
    assert!(hit(
        r#"any where `odd name` == "x""#,
        json!({"odd name": "x"})
    ));
    assert!(!hit(
        r#"any where `odd name` == "x""#,
        json!({"odd name": "y"})
    ));
    assert!(hit(
        r#"any where `my-obj`.`k 1` == 1"#,
        json!({"my-obj": {"k 1": 1}})
    ));
    let commented = "any where // a line comment\n  x == /* inline */ \"y\" /* trailing */";
    assert!(hit(commented, json!({"x": "y"})));
    assert!(!hit(commented, json!({"x": "z"})));
}

// ---------------------------------------------------------------------------------------------
// 7. regex is Lucene syntax, anchored, on the whole value

#[test]
fn lucene_regex() {
    let name = |n: &str| json!({"process": {"name": n}});
    assert!(hit(r#"any where process.name regex "ba.h""#, name("bash")));
    assert!(
        !hit(r#"any where process.name regex "as""#, name("bash")),
        "anchored both ends"
    );
    assert!(!hit(r#"any where process.name regex "BA.H""#, name("bash")));
    assert!(hit(r#"any where process.name regex~ "BA.H""#, name("bash")));
    // Lucene has no `\d` class: `\d` is an escaped `d`.
    assert!(!hit(r#"any where process.name regex "\\d""#, name("1")));
    assert!(hit(r#"any where process.name regex "\\d""#, name("d")));
    assert!(hit(r#"any where process.name regex "[0-9]+""#, name("123")));
    assert!(hit(
        r#"any where process.name regex "python<2-3>""#,
        name("python3")
    ));
    assert!(hit(
        r#"any where process.name regex ("x", "b[a-z]+")"#,
        name("bash")
    ));
}

// ---------------------------------------------------------------------------------------------
// 8. Sequences and samples

fn ev(id: i64, cat: &str, host: &str) -> Json {
    json!({"id": id, "event": {"category": cat}, "host": {"id": host}})
}

const FP: &str = "sequence by host.id with maxspan=1m [file where true] [process where true]";

#[test]
fn sequence_by_and_maxspan() {
    let ok = seqs(
        FP,
        vec![(0, ev(1, "file", "h1")), (30 * S, ev(2, "process", "h1"))],
    );
    assert_eq!(ok, vec![vec![Some(1), Some(2)]]);
    let late = seqs(
        FP,
        vec![(0, ev(1, "file", "h1")), (120 * S, ev(2, "process", "h1"))],
    );
    assert!(late.is_empty(), "two minutes apart: {late:?}");
    let other = seqs(
        FP,
        vec![(0, ev(1, "file", "h1")), (S, ev(2, "process", "h2"))],
    );
    assert!(other.is_empty(), "different host.id: {other:?}");
    let reversed = seqs(
        FP,
        vec![(0, ev(1, "process", "h1")), (S, ev(2, "file", "h1"))],
    );
    assert!(reversed.is_empty(), "order matters: {reversed:?}");
    let two_hosts = seqs(
        FP,
        vec![
            (0, ev(1, "file", "h1")),
            (S, ev(2, "file", "h2")),
            (2 * S, ev(3, "process", "h2")),
            (3 * S, ev(4, "process", "h1")),
        ],
    );
    assert_eq!(
        two_hosts,
        vec![vec![Some(2), Some(3)], vec![Some(1), Some(4)]]
    );
}

#[test]
fn sequence_per_stage_by() {
    let q = "sequence by host.id [file where true] by process.pid [process where true] by process.parent.pid";
    let file = |id, pid: i64| {
        let mut e = ev(id, "file", "h1");
        e["process"] = json!({"pid": pid});
        e
    };
    let proc_ = |id, host: &str, ppid: i64| {
        let mut e = ev(id, "process", host);
        e["process"] = json!({"pid": 99, "parent": {"pid": ppid}});
        e
    };
    assert_eq!(
        seqs(q, vec![(0, file(1, 10)), (S, proc_(2, "h1", 10))]),
        vec![vec![Some(1), Some(2)]]
    );
    assert!(
        seqs(q, vec![(0, file(1, 10)), (S, proc_(2, "h1", 11))]).is_empty(),
        "ppid differs"
    );
    assert!(
        seqs(q, vec![(0, file(1, 10)), (S, proc_(2, "h2", 10))]).is_empty(),
        "host differs"
    );
}

#[test]
fn sequence_until_cancels_pending() {
    let q = "sequence by host.id [file where true] [process where true] until [any where event.action == \"stop\"]";
    let stop = |id, host: &str| {
        let mut e = ev(id, "host", host);
        e["event"]["action"] = json!("stop");
        e
    };
    let cancelled = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, stop(2, "h1")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert!(cancelled.is_empty(), "{cancelled:?}");
    let other_host = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, stop(2, "h2")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert_eq!(other_host, vec![vec![Some(1), Some(3)]]);
    let restarted = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, stop(2, "h1")),
            (2 * S, ev(3, "file", "h1")),
            (3 * S, ev(4, "process", "h1")),
        ],
    );
    assert_eq!(restarted, vec![vec![Some(3), Some(4)]]);
}

#[test]
fn sequence_missing_event_in_the_middle() {
    let q = "sequence by host.id with maxspan=1m [file where true] ![network where true] [process where true]";
    let absent = seqs(
        q,
        vec![(0, ev(1, "file", "h1")), (2 * S, ev(3, "process", "h1"))],
    );
    assert_eq!(absent, vec![vec![Some(1), None, Some(3)]]);
    let present = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, ev(2, "network", "h1")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert!(
        present.is_empty(),
        "a network event with the same key in between: {present:?}"
    );
    let other_key = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, ev(2, "network", "h2")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert_eq!(other_key, vec![vec![Some(1), None, Some(3)]]);
    let before = seqs(
        q,
        vec![
            (0, ev(2, "network", "h1")),
            (S, ev(1, "file", "h1")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert_eq!(
        before,
        vec![vec![Some(1), None, Some(3)]],
        "a network event before the window does not count"
    );
}

#[test]
fn sequence_with_runs() {
    let q = "sequence by host.id [file where true] with runs=3 [process where true]";
    let three = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, ev(2, "file", "h1")),
            (2 * S, ev(3, "file", "h1")),
            (3 * S, ev(4, "process", "h1")),
        ],
    );
    assert_eq!(three, vec![vec![Some(1), Some(2), Some(3), Some(4)]]);
    let two = seqs(
        q,
        vec![
            (0, ev(1, "file", "h1")),
            (S, ev(2, "file", "h1")),
            (2 * S, ev(3, "process", "h1")),
        ],
    );
    assert!(two.is_empty(), "only two file events: {two:?}");
}

#[test]
fn sample_is_unordered() {
    let q = "sample by host.id [file where true] [process where true]";
    let out = seqs(
        q,
        vec![
            (0, ev(1, "process", "h1")),
            (S, ev(2, "file", "h2")),
            (2 * S, ev(3, "file", "h1")),
            (3 * S, ev(4, "network", "h2")),
        ],
    );
    assert_eq!(
        out,
        vec![vec![Some(3), Some(1)]],
        "h1 has both (in any order), h2 lacks a process event"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Functions

#[test]
fn functions() {
    let doc = json!({
        "process": {"name": "powershell.exe", "pid": 12, "neg": -7, "hex": "ff", "path": "C:\\Windows\\System32\\cmd.exe"},
        "source": {"ip": "10.6.48.157"},
        "destination": {"ip": "fe80::1"},
    });
    let yes = [
        r#"between(process.path, "System32\\", ".exe") == "cmd""#,
        r#"between(process.path, "nothere", ".exe") == """#,
        r#"between~(process.path, "SYSTEM32\\", ".EXE") == "cmd""#,
        r#"cidrMatch(source.ip, "192.168.0.0/16", "10.0.0.0/8")"#,
        r#"cidrMatch(destination.ip, "fe80::/10")"#,
        r#"concat(process.name, "-", process.pid) == "powershell.exe-12""#,
        r#"indexOf(process.name, "l") == 8"#,
        r#"indexOf(process.name, "l", 9) == 9"#,
        r#"indexOf~(process.name, "SHELL") == 5"#,
        "length(process.name) == 14",
        "number(process.hex, 16) == 255",
        r#"number("0x1337", 16) == 4919"#,
        r#"string(process.pid) == "12""#,
        r#"stringContains(process.name, "shell")"#,
        r#"substring(process.name, 0, 5) == "power""#,
        r#"substring(process.name, -4) == ".exe""#,
        "add(process.pid, 3) == 15",
        "subtract(process.pid, 20) == -8",
        "multiply(process.pid, -2) == -24",
        "divide(process.neg, 2) == -3",
        "divide(-7, 2) == -3",
        "divide(7, 2.0) == 3.5",
        "modulo(process.neg, 3) == -1",
        "process.neg / 2 == -3",
        "process.neg % 3 == -1",
    ];
    for cond in yes {
        assert!(
            hit(&format!("any where {cond}"), doc.clone()),
            "should hold: {cond}"
        );
    }
    let no = [
        r#"cidrMatch(source.ip, "192.168.0.0/16")"#,
        r#"indexOf(process.name, "l", 10) == 9"#,
        r#"stringContains(process.name, "SHELL")"#,
        "divide(-7, 2) == -4",
        "divide(process.pid, 0) == 0",
    ];
    for cond in no {
        assert!(
            !hit(&format!("any where {cond}"), doc.clone()),
            "should not hold: {cond}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Errors point at the offending token

/// Compiles `text`, expects an error whose message contains `msg` and whose span is exactly the
/// first occurrence of `token`; checks the rendered position and caret line.
fn check_error(text: &str, msg: &str, token: &str) {
    let err = compile(text, &EqlOptions::default()).unwrap_err();
    let rendered = err.render(text, "query");
    assert!(
        err.message.contains(msg),
        "message {:?} lacks {msg:?}",
        err.message
    );
    let at = text
        .find(token)
        .unwrap_or_else(|| panic!("{token:?} not in {text:?}"));
    assert_eq!(
        &text[err.span.start..err.span.end],
        token,
        "span of {:?}\n{rendered}",
        err.message
    );
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    assert_eq!(err.line_col(text), (line, col));
    assert!(
        rendered.contains(&format!("query:{line}:{col}")),
        "{rendered}"
    );
    let width = token.lines().next().unwrap().chars().count().max(1);
    let caret = format!("  | {}{}", " ".repeat(col - 1), "^".repeat(width));
    assert!(
        rendered.lines().any(|l| l == caret),
        "no caret line {caret:?} in\n{rendered}"
    );
    let echoed = format!("  | {}", text.lines().nth(line - 1).unwrap());
    assert!(
        rendered.lines().any(|l| l == echoed),
        "offending line not echoed:\n{rendered}"
    );
}

#[test]
fn errors_point_at_the_token() {
    check_error(
        r#"process where process.name == "bash"#,
        "unterminated string",
        "\"bash",
    );
    check_error(
        "process where\n  foo(process.name) == 1",
        "unknown function",
        "foo",
    );
    let typo = compile(r#"any where stringContain(x, "a")"#, &EqlOptions::default()).unwrap_err();
    assert!(
        typo.message.contains("did you mean `stringContains`"),
        "{}",
        typo.message
    );
    check_error(
        "process where length(process.name, 1) == 2",
        "takes exactly 1 argument",
        "process.name, 1",
    );
    check_error(
        "process where process.name == process.parent.name",
        "comparisons between fields",
        "process.name == process.parent.name",
    );
    check_error(
        "process where process.name == 'bash'",
        "single quotes",
        "'bash'",
    );
    check_error("process where process.name = \"bash\"", "use `==`", "=");
    check_error(
        "process where\n  process.name : \"a\"\n  and process.pid = 4",
        "use `==`",
        "=",
    );
    check_error("sequence [file where true]", "at least 2", "sequence");
    check_error(
        "process where process.name == \"a\" | sort x",
        "unknown pipe",
        "sort x",
    );
}
