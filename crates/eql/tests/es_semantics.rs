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

/// The seed rule, verbatim (the same text the rule pack ships).
const SEED: &str = include_str!("seed_rule.eql");

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

fn with(mut doc: Json, pointer: &str, value: Json) -> Json {
    *doc.pointer_mut(pointer).expect("pointer exists") = value;
    doc
}

fn seed_hits(docs: Vec<Json>, want: bool) {
    for doc in docs {
        assert_eq!(hit(SEED, doc.clone()), want, "seed rule on {doc}");
    }
}

#[test]
fn seed_rule_file_branch() {
    let evil = "/etc/systemd/system/evil.service";
    let writer = |name: &str| unit_file(evil, Some(name));
    seed_hits(
        vec![
            writer("bash"),
            unit_file(evil, None), // must_not holds when process.name is missing
            unit_file("/home/eve/.config/systemd/user/x.service", Some("bash")),
            with(writer("vim"), "/event/type", json!(["change", "info"])),
        ],
        true,
    );
    seed_hits(
        vec![
            writer("dpkg"),
            writer("ansible-playbook"),
            unit_file("/etc/systemd/evil.service", Some("bash")),
            with(writer("bash"), "/event/type", json!(["deletion"])),
            with(writer("bash"), "/file/extension", json!("conf")),
        ],
        false,
    );
}

#[test]
fn seed_rule_process_branch() {
    let enable = ["systemctl", "enable", "x.service"];
    seed_hits(
        vec![
            systemctl(&enable, "bash"),
            systemctl(&["systemctl", "daemon-reload"], "python3.11"),
        ],
        true,
    );
    seed_hits(
        vec![
            systemctl(&enable, "systemd"),
            systemctl(&["systemctl", "status", "x.service"], "bash"),
            with(systemctl(&enable, "sh"), "/event/type", json!(["end"])),
            with(
                systemctl(&enable, "sh"),
                "/process/name",
                json!("SystemCtl"),
            ),
        ],
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Conditions `any where <cond>` checked one by one against a single event.

fn check(doc: &Json, holds: &[&str], fails: &[&str]) {
    for (conds, want) in [(holds, true), (fails, false)] {
        for cond in conds {
            let text = format!("any where {cond}");
            assert_eq!(hit(&text, doc.clone()), want, "`{text}` on {doc}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Null logic: negations are Query DSL must_not, so they hold on missing fields.

#[test]
fn null_logic() {
    let missing = json!({"event": {"category": "process"}, "process": {"pid": 1}});
    let holds = [
        r#"not process.name : "dpkg""#,
        r#"process.name != "dpkg""#,
        "process.name == null",
        r#"not process.name in ("a")"#,
        r#"process.name not in ("a")"#,
        "not process.ppid < 0",
        "not process.ppid == 1",
    ];
    let fails = [
        "process.name != null",
        r#"process.name in ("a")"#,
        r#"process.name : "*""#,
        "process.ppid < 0",
    ];
    check(&missing, &holds, &fails);
    let dpkg = json!({"process": {"name": "dpkg"}});
    let present = ["process.name != null", r#"process.name not in ("a")"#];
    check(&dpkg, &present, &holds[..3]);
    let explicit_null = json!({"process": {"name": null}});
    check(&explicit_null, &[holds[2]], &[fails[0]]);
}

// ---------------------------------------------------------------------------------------------
// 3. Multi-valued fields: a leaf holds when any value does.

#[test]
fn arrays_match_any_value() {
    let enable = json!({"process": {"args": ["systemctl", "enable", "x.service"]}});
    let status = json!({"process": {"args": ["systemctl", "status", "x.service"]}});
    let eq = r#"process.args == "enable""#;
    let ne = r#"process.args != "enable""#;
    let colon = r#"process.args : "ENA*""#;
    let within = r#"process.args in ("x", "enable")"#;
    check(&enable, &[eq, colon, within], &[ne]);
    check(&status, &[ne], &[eq, colon, within]);
}

// ---------------------------------------------------------------------------------------------
// 4. Case sensitivity: `==`, `in`, `like` and functions are sensitive; `:`, `~` forms are not.

#[test]
fn case_sensitivity() {
    let holds = [
        r#"process.name == "bash""#,
        r#"process.name : "BASH""#,
        r#"process.name in~ ("BASH")"#,
        r#"startsWith~(process.name, "BA")"#,
        r#"endsWith~(process.name, "SH")"#,
        r#"stringContains~(process.name, "AS")"#,
        r#"process.name like~ "BA*""#,
        r#"process.name like "ba*""#,
    ];
    let fails = [
        r#"process.name == "Bash""#,
        r#"process.name in ("BASH")"#,
        r#"startsWith(process.name, "BA")"#,
        r#"endsWith(process.name, "SH")"#,
        r#"process.name like "BA*""#,
    ];
    check(&json!({"process": {"name": "bash"}}), &holds, &fails);
}

// ---------------------------------------------------------------------------------------------
// 5. Wildcards: `?` is one character for `:` and `like`; `==` has no wildcards.

#[test]
fn wildcards() {
    let name = |n: &str| json!({"process": {"name": n}});
    let one = [r#"process.name : "ba?h""#, r#"process.name like "ba?h""#];
    check(&name("bash"), &one, &[]);
    check(&name("bah"), &[], &one);
    check(&name("basssh"), &[], &one);
    let path = |p: &str| json!({"file": {"path": p}});
    let eq = r#"file.path == "/etc/*""#;
    let colon = r#"file.path : "/etc/*""#;
    check(&path("/etc/x"), &[colon], &[eq]);
    check(&path("/etc/*"), &[eq, colon], &[]);
}

// ---------------------------------------------------------------------------------------------
// 6. Strings, escapes, quoted field names and comments

#[test]
fn escapes_quoting_and_comments() {
    let x = |v: &str| json!({ "x": v });
    check(&x("a\"b"), &[r#"x == "a\"b""#], &[r#"x == "a\\\"b""#]);
    check(&x("\t"), &[r#"x == "\t""#], &[r#"x == "\\t""#]);
    check(&x(r"C:\raw\path"), &[r#"x == """C:\raw\path""""#], &[]);
    check(&x("A"), &[r#"x == "\u{41}""#], &[]);
    let odd = r#"`odd name` == "x""#;
    check(&json!({"odd name": "x"}), &[odd], &[]);
    check(&json!({"odd name": "y"}), &[], &[odd]);
    let nested = json!({"my-obj": {"k 1": 1}});
    check(&nested, &["`my-obj`.`k 1` == 1"], &[]);
    let commented = "// a line comment\n  x == /* inline */ \"y\" /* trailing */ // end";
    check(&x("y"), &[commented], &[]);
    check(&x("z"), &[], &[commented]);
}

// ---------------------------------------------------------------------------------------------
// 7. regex is Lucene syntax, anchored, on the whole value

#[test]
fn lucene_regex() {
    let name = |n: &str| json!({"process": {"name": n}});
    let bash = [
        r#"process.name regex "ba.h""#,
        r#"process.name regex~ "BA.H""#,
        r#"process.name regex ("x", "b[a-z]+")"#,
    ];
    let not_bash = [r#"process.name regex "as""#, r#"process.name regex "BA.H""#];
    check(&name("bash"), &bash, &not_bash);
    // Lucene has no `\d` class: `\d` is an escaped `d` (the EQL string "\\d" is `\d`).
    let digit = r#"process.name regex "\\d""#;
    check(&name("1"), &[r#"process.name regex "[0-9]+""#], &[digit]);
    check(&name("d"), &[digit], &[]);
    check(
        &name("python3"),
        &[r#"process.name regex "python<2-3>""#],
        &[],
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Sequences and samples

/// An event of category `cat` on host `host`; `event.action` repeats the category.
fn ev(id: i64, cat: &str, host: &str) -> Json {
    json!({"id": id, "event": {"category": cat, "action": cat}, "host": {"id": host}})
}

/// A stream written as `"seconds id category host, ..."`.
fn stream(spec: &str) -> Vec<(i64, Json)> {
    spec.split(',')
        .map(
            |item| match item.split_whitespace().collect::<Vec<_>>()[..] {
                [t, id, cat, host] => (
                    t.parse::<i64>().unwrap() * S,
                    ev(id.parse().unwrap(), cat, host),
                ),
                _ => panic!("bad stream item {item:?}"),
            },
        )
        .collect()
}

type Seqs = Vec<Vec<Option<i64>>>;

fn sq(text: &str, spec: &str) -> Seqs {
    seqs(text, stream(spec))
}

fn ids_of(list: &[&[i64]]) -> Seqs {
    list.iter()
        .map(|s| s.iter().map(|&i| (i != 0).then_some(i)).collect())
        .collect()
}

const FP: &str = "sequence by host.id with maxspan=1m [file where true] [process where true]";

#[test]
fn sequence_by_and_maxspan() {
    assert_eq!(sq(FP, "0 1 file h1, 30 2 process h1"), ids_of(&[&[1, 2]]));
    assert_eq!(
        sq(FP, "0 1 file h1, 120 2 process h1"),
        ids_of(&[]),
        "2m apart"
    );
    assert_eq!(
        sq(FP, "0 1 file h1, 1 2 process h2"),
        ids_of(&[]),
        "host differs"
    );
    assert_eq!(
        sq(FP, "0 1 process h1, 1 2 file h1"),
        ids_of(&[]),
        "order matters"
    );
    let hosts = "0 1 file h1, 1 2 file h2, 2 3 process h2, 3 4 process h1";
    assert_eq!(sq(FP, hosts), ids_of(&[&[2, 3], &[1, 4]]));
    let no_key = vec![
        (0, json!({"id": 1, "event": {"category": "file"}})),
        (S, json!({"id": 2, "event": {"category": "process"}})),
    ];
    assert_eq!(
        seqs(FP, no_key.clone()),
        ids_of(&[]),
        "a null key does not join"
    );
    let optional = FP.replace("by host.id", "by ?host.id");
    assert_eq!(
        seqs(&optional, no_key),
        ids_of(&[&[1, 2]]),
        "?field joins on null"
    );
}

#[test]
fn sequence_per_stage_by() {
    let q = "sequence by host.id [file where true] by process.pid \
             [process where true] by process.parent.pid";
    let run_with = |host: &str, ppid: i64| {
        let mut file = ev(1, "file", "h1");
        file["process"] = json!({"pid": 10});
        let mut child = ev(2, "process", host);
        child["process"] = json!({"pid": 99, "parent": {"pid": ppid}});
        seqs(q, vec![(0, file), (S, child)])
    };
    assert_eq!(run_with("h1", 10), ids_of(&[&[1, 2]]));
    assert_eq!(run_with("h1", 11), ids_of(&[]), "ppid differs");
    assert_eq!(run_with("h2", 10), ids_of(&[]), "host differs");
}

#[test]
fn sequence_until_cancels_pending() {
    let q = r#"sequence by host.id [file where true] [process where true]
               until [any where event.action == "stop"]"#;
    let cancelled = "0 1 file h1, 1 2 stop h1, 2 3 process h1";
    assert_eq!(sq(q, cancelled), ids_of(&[]));
    let other_host = "0 1 file h1, 1 2 stop h2, 2 3 process h1";
    assert_eq!(sq(q, other_host), ids_of(&[&[1, 3]]));
    let again = "0 1 file h1, 1 2 stop h1, 2 3 file h1, 3 4 process h1";
    assert_eq!(sq(q, again), ids_of(&[&[3, 4]]));
}

#[test]
fn sequence_missing_event_in_the_middle() {
    let q = "sequence by host.id with maxspan=1m \
             [file where true] ![network where true] [process where true]";
    assert_eq!(sq(q, "0 1 file h1, 2 3 process h1"), ids_of(&[&[1, 0, 3]]));
    let between = "0 1 file h1, 1 2 network h1, 2 3 process h1";
    assert_eq!(sq(q, between), ids_of(&[]), "same key in between");
    let other_key = "0 1 file h1, 1 2 network h2, 2 3 process h1";
    assert_eq!(sq(q, other_key), ids_of(&[&[1, 0, 3]]));
    let before = "0 2 network h1, 1 1 file h1, 2 3 process h1";
    assert_eq!(
        sq(q, before),
        ids_of(&[&[1, 0, 3]]),
        "before is not between"
    );
}

const TRAILING: &str = "sequence by host.id with maxspan=1m \
                        [file where true] [process where true] ![network where true]";

#[test]
fn sequence_missing_event_at_the_end() {
    assert_eq!(
        sq(TRAILING, "0 1 file h1, 1 2 process h1"),
        ids_of(&[&[1, 2, 0]])
    );
    let within = "0 1 file h1, 1 2 process h1, 59 3 network h1";
    assert_eq!(sq(TRAILING, within), ids_of(&[]), "network within maxspan");
    let late = "0 1 file h1, 1 2 process h1, 120 3 network h1";
    assert_eq!(
        sq(TRAILING, late),
        ids_of(&[&[1, 2, 0]]),
        "network after the window"
    );
}

/// Regression: the periodic clean-up (every 4096th event) forgets missing events older than
/// 2×maxspan; it must run only after the completed sequences waiting on a trailing `![..]` have been
/// judged, or a missing event seen inside the window is forgotten and the sequence wrongly reported.
#[test]
fn trailing_missing_event_survives_periodic_cleanup() {
    let mut events = stream("0 1 file h1, 1 2 process h1, 59 3 network h1");
    for i in 0..4092 {
        events.push((60 * S, json!({"id": 100 + i}))); // matches no stage
    }
    events.extend(stream("200 4 file h2")); // the 4096th event
    assert_eq!(
        seqs(TRAILING, events),
        ids_of(&[]),
        "network at 59s is in the window"
    );
}

#[test]
fn sequence_with_runs() {
    let q = "sequence by host.id [file where true] with runs=3 [process where true]";
    let three = "0 1 file h1, 1 2 file h1, 2 3 file h1, 3 4 process h1";
    assert_eq!(sq(q, three), ids_of(&[&[1, 2, 3, 4]]));
    let two = "0 1 file h1, 1 2 file h1, 2 3 process h1";
    assert_eq!(sq(q, two), ids_of(&[]), "only two file events");
}

#[test]
fn sample_is_unordered() {
    let q = "sample by host.id [file where true] [process where true]";
    let spec = "0 1 process h1, 1 2 file h2, 2 3 file h1, 3 4 network h2";
    assert_eq!(
        sq(q, spec),
        ids_of(&[&[3, 1]]),
        "h1 has both; h2 lacks a process"
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
    let no = [
        r#"cidrMatch(source.ip, "192.168.0.0/16")"#,
        r#"indexOf(process.name, "l", 10) == 9"#,
        r#"stringContains(process.name, "SHELL")"#,
        "divide(-7, 2) == -4",
        "divide(process.pid, 0) == 0",
    ];
    check(&doc, &yes, &no);
}

// ---------------------------------------------------------------------------------------------
// 10. Errors point at the offending token

/// `case` is `message part => query`, with the text the error's span must cover marked `«..»`.
/// Checks the message, the span, and the rendered position, echoed line and caret line.
fn check_error(case: &str) {
    let (msg, marked) = case.split_once(" => ").expect("`message => query`");
    let (start, end) = (
        marked.find('«').unwrap(),
        marked.find('»').unwrap() - '«'.len_utf8(),
    );
    let text = marked.replace(['«', '»'], "");
    let token = &text[start..end];
    let err = compile(&text, &EqlOptions::default()).unwrap_err();
    let shown = err.render(&text, "query");
    assert!(err.message.contains(msg), "{msg:?} not in\n{shown}");
    assert_eq!(
        (err.span.start, err.span.end),
        (start, end),
        "{token:?}\n{shown}"
    );
    let line = text[..start].matches('\n').count() + 1;
    let col = text[..start].rsplit('\n').next().unwrap().chars().count() + 1;
    assert_eq!(err.line_col(&text), (line, col));
    assert!(shown.contains(&format!("query:{line}:{col}")), "{shown}");
    let width = token.lines().next().unwrap_or("").chars().count().max(1);
    let caret = format!("  | {}{}", " ".repeat(col - 1), "^".repeat(width));
    let echoed = format!("  | {}", text.lines().nth(line - 1).unwrap());
    assert!(
        shown.lines().any(|l| l == caret),
        "{caret:?} not in\n{shown}"
    );
    assert!(
        shown.lines().any(|l| l == echoed),
        "{echoed:?} not in\n{shown}"
    );
}

#[test]
fn errors_point_at_the_token() {
    let cases = [
        r#"unterminated string => process where process.name == «"bash»"#,
        "unknown function `foo` => process where\n  «foo»(process.name) == 1",
        r#"did you mean `stringContains` => any where «stringContain»(x, "a")"#,
        "takes exactly 1 argument => process where length(«process.name, 1») == 2",
        "between fields => process where «process.name == process.parent.name»",
        "single quotes => process where process.name == «'bash'»",
        r#"use `==` => process where process.name «=» "bash""#,
        "use `==` => process where\n  process.name : \"a\"\n  and process.pid «=» 4",
        "at least 2 => «sequence [file where true]»",
        r#"unknown pipe => process where process.name == "a" | «sort x»"#,
        "unterminated comment => process where x == 1 «/* open»",
        "needs `with maxspan=..` => sequence [file where true] «![dns where true]» [any where true]",
    ];
    for case in cases {
        check_error(case);
    }
}

/// Elasticsearch converts a term's value to the field's type, so a number and its string spelling
/// are the same term: `event.code == 4624` matches the keyword "4624", `process.pid == "42"` the
/// long 42, in lists too; but "042" is not 42 and ranges are not coerced.
#[test]
fn numbers_and_numeric_strings_are_the_same_term() {
    let doc = json!({"event": {"category": "process", "code": "4624"}, "process": {"pid": 42}});
    check(
        &doc,
        &[
            "event.code == 4624",
            "event.code in (4624, 4625)",
            "process.pid == \"42\"",
            "process.pid in (\"42\")",
            "process.pid != 7",
            "event.code != 7",
        ],
        &[
            "event.code != 4624",
            "process.pid == \"042\"",
            "event.code == 4625",
        ],
    );
}
