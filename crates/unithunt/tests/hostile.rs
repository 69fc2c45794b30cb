//! Hostile input for `unithunt scan`: huge, deep, binary, truncated, unreadable or oddly framed
//! input must never panic, must keep the line accounting exact (lines == parsed + ruled out +
//! skipped), and must say what went wrong and where.

mod common;
use common::Tmp;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const GOOD: &str = r#"{"@timestamp":"2026-11-27T10:00:00Z","event":{"category":["file"],"type":["creation"]},"process":{"name":"bash"},"file":{"path":"/etc/systemd/system/x.service","extension":"service"},"host":{"name":"h"},"user":{"name":"root"}}"#;
const ENABLE: &str = r#"{"@timestamp":"2026-11-27T10:00:01Z","event":{"category":["process"],"type":["start"]},"process":{"name":"systemctl","args":["systemctl","enable","x"],"command_line":"systemctl enable x","parent":{"name":"bash"}},"host":{"name":"h"},"user":{"name":"root"}}"#;
/// Makes the prefilter keep a line, so that it goes through the JSON parser.
const LITERAL: &str = r#"{"file":{"path":"/etc/systemd/system/"},"a":"#;

struct Run {
    code: i32,
    out: Vec<u8>,
    raw_err: Vec<u8>,
    err: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}, stderr:\n{}", self.code, self.err)
    }
}

/// Runs `unithunt scan ARGS` and checks it neither panicked nor died of a signal.
/// The seed rule alone: these tests count alerts per hostile input, and the counts are the seed
/// rule's (the default pack's other rules have their own tests).
const SEED_RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../rules/elastic/persistence_systemd_service_seed.toml"
);

fn scan(args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    let own_rules = args.iter().any(|a| *a == "--rules" || *a == "--no-builtin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .arg("scan")
        .args(if own_rules {
            &[][..]
        } else {
            &["--no-builtin", "--rules", SEED_RULE][..]
        })
        .args(args)
        .stdin(stdin.as_ref().map_or(Stdio::null(), |_| Stdio::piped()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let feeder = stdin.map(|input| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || drop(w.write_all(&input)))
    });
    let o = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let Some(code) = o.status.code() else {
        panic!("scan {args:?} died of a signal (stack overflow?): {err}")
    };
    assert!(matches!(code, 0..=2), "scan {args:?}: exit {code}\n{err}");
    assert!(!err.contains("panicked"), "scan {args:?} panicked:\n{err}");
    Run {
        code,
        out: o.stdout,
        raw_err: o.stderr,
        err,
    }
}

/// `unithunt scan -o ndjson FILES...`
fn nd(files: &[&str]) -> Run {
    scan(&[&["-o", "ndjson"], files].concat(), None)
}

#[derive(Debug)]
struct Summary {
    files: u64,
    lines: u64,
    parsed: u64,
    events: u64,
    ruled_out: u64,
    skipped: u64,
    alerts: u64,
}

/// Parses the summary line and checks the accounting invariant.
fn summary(r: &Run) -> Summary {
    let Some(line) = r.err.lines().find(|l| l.starts_with("unithunt scan: ")) else {
        panic!("no summary: {r}")
    };
    let before = |tag: &str| -> u64 {
        let i = line
            .find(tag)
            .unwrap_or_else(|| panic!("no `{tag}` in: {line}"));
        let word = line[..i].split_whitespace().last().unwrap();
        let n = word.trim_start_matches('(').parse();
        n.unwrap_or_else(|_| panic!("no number before `{tag}` in: {line}"))
    };
    let s = Summary {
        files: before(" file(s)"),
        lines: before(" lines:"),
        parsed: before(" parsed ("),
        events: before(" events evaluated"),
        ruled_out: before(" ruled out"),
        skipped: before(" skipped;"),
        alerts: before(" alert(s)"),
    };
    let sum = s.parsed + s.ruled_out + s.skipped;
    assert_eq!(s.lines, sum, "lines != parsed + ruled out + skipped: {r}");
    s
}

/// The `  skipped FILE:LINE: REASON` lines (temp paths hold no `:`).
fn skips(r: &Run) -> Vec<(String, u64, String)> {
    let parse = |rest: &str| {
        let (file, rest) = rest.split_once(':').expect("FILE:LINE");
        let (line, reason) = rest.split_once(": ").expect("LINE: REASON");
        let line = line.parse().expect("line number");
        (file.to_string(), line, reason.to_string())
    };
    let lines = r.err.lines().filter_map(|l| l.strip_prefix("  skipped "));
    lines.map(parse).collect()
}

/// The reason given for skipping FILE:LINE, which must be reported.
fn skipped_at(r: &Run, file: &str, line: u64) -> String {
    let mut all = skips(r).into_iter();
    let Some((.., reason)) = all.find(|(f, l, _)| f == file && *l == line) else {
        panic!("{file}:{line} not reported: {r}")
    };
    assert!(!reason.trim().is_empty(), "{file}:{line}: no reason");
    reason
}

/// Alerts of an `-o ndjson` run; every line must be valid JSON.
fn alerts(r: &Run) -> Vec<Value> {
    let parse = |l: &[u8]| {
        serde_json::from_slice(l).unwrap_or_else(|e| {
            panic!("invalid NDJSON alert ({e}): {}", String::from_utf8_lossy(l))
        })
    };
    let lines = r.out.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    lines.map(parse).collect()
}

/// What identifies an alert independently of file names and offsets, sorted.
fn keys(r: &Run) -> Vec<String> {
    let fields = [
        "/@timestamp",
        "/kibana.alert.rule.rule_id",
        "/file/path",
        "/process/command_line",
    ];
    let key = |a: &Value| fields.map(|f| format!("{:?}", a.pointer(f))).join("|");
    let mut k: Vec<String> = alerts(r).iter().map(key).collect();
    k.sort();
    k
}

/// Compresses `path` with a command-line tool (`gzip`, `zstd`); None (skip) without the tool.
fn compress(tool: &str, path: &str) -> Option<Vec<u8>> {
    let Ok(o) = Command::new(tool).args(["-c", path]).output() else {
        eprintln!("skipping: `{tool}` is not installed");
        return None;
    };
    assert!(o.status.success(), "{tool} -c {path} failed");
    Some(o.stdout)
}

/// A line holding the literal and a string of `n` bytes.
fn long_line(n: usize) -> Vec<u8> {
    let mut big = format!("{LITERAL}\"").into_bytes();
    big.resize(big.len() + n, b'x');
    big.extend_from_slice(b"\"}\n");
    big
}

#[test]
fn a_100_mb_line_is_accounted_and_the_next_line_still_alerts() {
    let t = Tmp::new("huge_line");
    let big = [long_line(100_000_000), format!("{GOOD}\n").into_bytes()].concat();
    let f = t.file("huge.ndjson", &big);
    // A file (memory-mapped) and standard input (streamed) take different read paths.
    for (arg, stdin) in [(f.as_str(), None), ("-", Some(big.clone()))] {
        let r = scan(&["-o", "ndjson", arg], stdin);
        assert_eq!(r.code, 0, "{r}");
        let s = summary(&r);
        assert_eq!(s.lines, 2, "{r}");
        let name = if arg == "-" { "<stdin>" } else { arg };
        // Parsed, or else skipped with a reason.
        assert!(s.parsed == 2 || !skipped_at(&r, name, 1).is_empty());
        assert_eq!(alerts(&r).len(), 1, "GOOD after the huge line alerts: {r}");
    }
}

#[test]
fn over_long_lines_are_skipped_alike_from_files_and_stdin() {
    let t = Tmp::new("oversized");
    let huge = long_line(257 << 20);
    let after_good = [GOOD.as_bytes(), b"\n", &huge].concat();
    for (name, text, line) in [("only", huge.clone(), 1), ("after-good", after_good, 2)] {
        let f = t.file(name, &text);
        for (arg, stdin) in [(f.as_str(), None), ("-", Some(text.clone()))] {
            let r = scan(&["-o", "ndjson", arg], stdin);
            let s = summary(&r);
            assert_eq!((s.lines, s.parsed + 1), (line, line), "{name}, {arg}: {r}");
            let reason = skipped_at(&r, if arg == "-" { "<stdin>" } else { arg }, line);
            assert!(reason.contains("MiB limit"), "{name} via {arg}: {r}");
        }
    }
}

#[test]
fn deeply_nested_json_is_skipped_without_overflowing_the_stack() {
    let t = Tmp::new("deep");
    let depth = 10_000;
    let obj = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let arr = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    // With the literal, the prefilter keeps these lines: they must go through the parser.
    let obj_lit = format!("{LITERAL}{obj}}}");
    let arr_lit = format!(r#"["/etc/systemd/system/",{arr}]"#);
    let text = [GOOD, &obj, &arr, &obj_lit, &arr_lit, GOOD].join("\n") + "\n";
    let f = t.file("deep.ndjson", &text);
    let r = nd(&[&f]);
    assert_eq!(r.code, 0, "{r}");
    let s = summary(&r);
    assert_eq!((s.lines, s.parsed), (6, 2), "{r}");
    assert_eq!(alerts(&r).len(), 2, "both GOOD lines alert: {r}");
    for line in [4, 5] {
        let reason = skipped_at(&r, &f, line);
        assert!(reason.contains("recursion limit"), "line {line}: {reason}");
    }
    // A file starting with `[` is read as one JSON document: the parser meets the depth first.
    let doc = t.file("deep.json", format!("{arr}\n{GOOD}\n"));
    let r = nd(&[&doc]);
    let s = summary(&r);
    assert_eq!((s.lines, s.skipped), (2, 2), "{r}");
    assert!(!skips(&r).is_empty(), "the bad document is reported: {r}");
}

#[test]
fn nul_bytes_are_accounted_and_reported_with_file_and_line() {
    let t = Tmp::new("nul");
    let mut text = Vec::new();
    for line in [
        GOOD.as_bytes(),
        b"{\"file\":{\"path\":\"/etc/systemd/system/\0x.service\"}}",
        b"\0\0\0\0\0\0\0\0",
        b"{\"file\":{\"path\":\"/etc/systemd/system/x.service\"}}\0",
        GOOD.replace(r#""h""#, r#""h\u0000""#).as_bytes(),
    ] {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let f = t.file("nul.ndjson", &text);
    let r = nd(&[&f]);
    assert_eq!(r.code, 0, "{r}");
    let s = summary(&r);
    assert_eq!((s.lines, s.parsed, s.skipped), (5, 2, 3), "{r}");
    for line in [2, 3, 4] {
        skipped_at(&r, &f, line);
    }
    assert_eq!(alerts(&r).len(), 2, "{r}");
    let r = scan(&[&f], None);
    let nul = r.out.contains(&0) || r.raw_err.contains(&0);
    assert!(!nul, "a raw NUL reached the terminal");
}

#[test]
fn invalid_utf8_is_skipped_with_file_and_line() {
    let t = Tmp::new("utf8");
    let (head, tail) = GOOD.split_once("x.service").unwrap();
    let bad = [head.as_bytes(), b"\xff\xfe.service", tail.as_bytes()].concat();
    let text = [&bad[..], b"\n", GOOD.as_bytes(), b"\n{\"a\":\"\xff\"}\n"].concat();
    let f = t.file("utf8.ndjson", &text);
    let r = nd(&[&f]);
    assert_eq!(r.code, 0, "{r}");
    let s = summary(&r);
    assert_eq!((s.lines, s.parsed), (3, 1), "{r}");
    skipped_at(&r, &f, 1);
    assert_eq!(alerts(&r).len(), 1, "GOOD still alerts: {r}");
}

#[test]
fn files_with_non_utf8_names_in_a_directory_are_scanned() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tmp::new("utf8_name");
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe.ndjson");
    std::fs::write(t.0.join(name), format!("{GOOD}\n")).unwrap();
    let r = nd(&[&t.path("")]);
    assert_eq!((r.code, alerts(&r).len()), (0, 1), "{r}");
}

/// The alerting event with ANSI escapes as JSON escapes, then with a raw ESC (invalid JSON), in a
/// file whose name is hostile too (it is printed in the skipped-line report).
fn ansi_input(t: &Tmp) -> (String, String) {
    let json = ENABLE
        .replace("enable x", r"enable \u001b[31mx\u001b]0;pwned\u0007")
        .replace(r#""h""#, r#""h\u001b[2J""#);
    let raw = ENABLE.replace("enable x", "enable \x1b[31mx\x07");
    let f = t.file("evil\x1b[31m\x07.ndjson", format!("{json}\n{raw}\n"));
    (f, json)
}

fn assert_no_raw_controls(r: &Run, what: &str) {
    for (stream, bytes) in [("stdout", &r.out), ("stderr", &r.raw_err)] {
        let text = String::from_utf8_lossy(bytes);
        let raw = bytes.iter().any(|&b| b == 0x1b || b == 0x07);
        assert!(
            !raw,
            "{what}: raw ESC/BEL on {stream}: {}",
            text.escape_debug()
        );
    }
}

#[test]
fn ansi_escapes_never_reach_the_terminal() {
    let t = Tmp::new("ansi");
    let (f, _) = ansi_input(&t);
    let missing = t.path("gone\x1b[2J.ndjson");
    for args in [
        vec![&*f],
        vec!["-o", "table", &f],
        vec!["-o", "table", &f, &missing],
    ] {
        let r = scan(&args, None);
        assert_no_raw_controls(&r, &format!("{args:?}"));
        let s = summary(&r);
        assert_eq!(
            (s.lines, s.parsed, s.skipped, s.alerts),
            (2, 1, 1, 1),
            "{r}"
        );
        assert_eq!(skips(&r).len(), 1, "the raw-ESC line is reported: {r}");
        let shown = String::from_utf8_lossy(&r.out).contains(r"\u{1b}");
        assert!(shown, "the escape is shown escaped");
        assert_eq!(r.code, if args.len() == 4 { 2 } else { 0 }, "{r}");
    }
}

#[test]
fn ansi_escapes_are_not_written_raw_to_csv() {
    let t = Tmp::new("ansi_csv");
    let (f, _) = ansi_input(&t);
    let r = scan(&["-o", "csv", &f], None);
    assert_eq!(summary(&r).alerts, 1, "{r}");
    assert_no_raw_controls(&r, "-o csv");
}

#[test]
fn ansi_escapes_stay_escaped_in_json_output() {
    let t = Tmp::new("ansi_json");
    let (f, json) = ansi_input(&t);
    let event: Value = serde_json::from_str(&json).unwrap();
    let r = nd(&[&f]);
    assert_no_raw_controls(&r, "-o ndjson");
    let a = alerts(&r);
    assert_eq!(a.len(), 1, "{r}");
    let cmd = "/process/command_line";
    assert_eq!(a[0].pointer(cmd), event.pointer(cmd));
    let escaped = String::from_utf8_lossy(&r.out).contains(r"\u001b[31m");
    assert!(escaped, "ESC is JSON-escaped");
    let r = scan(&["-o", "json", &f], None);
    assert_no_raw_controls(&r, "-o json");
    let all: Value = serde_json::from_slice(&r.out).expect("-o json is one valid JSON array");
    assert_eq!(all.as_array().map(Vec::len), Some(1));
}

#[test]
fn a_truncated_gzip_is_an_error_but_the_other_files_are_scanned() {
    let t = Tmp::new("gzip");
    let line = |i| GOOD.replace("x.service", &format!("unit{i}.service")) + "\n";
    let plain = t.file("plain.ndjson", (0..1000).map(line).collect::<String>());
    let Some(gz) = compress("gzip", &plain) else {
        return;
    };
    let cut = t.file("cut.ndjson.gz", &gz[..gz.len() / 2]);
    let ok = t.file("ok.ndjson", format!("{ENABLE}\n"));
    let r = nd(&[&cut, &ok]);
    assert_eq!(r.code, 2, "a truncated input is an I/O error: {r}");
    let mut errors = r.err.lines().filter(|l| l.starts_with("error: "));
    let Some(e) = errors.find(|l| l.contains(&cut)) else {
        panic!("no error naming {cut}: {r}")
    };
    let after = e.split("byte ").nth(1).expect("a byte offset");
    let byte: u64 = after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .expect(e);
    assert!(
        byte > 0 && byte <= (gz.len() / 2) as u64,
        "offset {byte} in: {e}"
    );
    let s = summary(&r);
    assert_eq!(s.files, 2, "{r}");
    assert!(s.lines > 1, "lines before the damage are read: {r}");
    assert!(s.skipped <= 1, "at most the cut line is lost: {r}");
    let a = keys(&r);
    assert_eq!(a.len() as u64, s.parsed, "every intact line alerts: {r}");
    let ok_scanned = a.iter().any(|k| k.contains("systemctl enable x"));
    assert!(ok_scanned, "ok.ndjson was scanned: {r}");
}

#[test]
fn unreadable_inputs_are_errors_but_the_other_files_are_scanned() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tmp::new("unreadable");
    let ok = t.file("ok.ndjson", format!("{GOOD}\n"));
    let missing = t.path("missing.ndjson");
    let r = nd(&[&missing, &ok]);
    assert_eq!(r.code, 2, "{r}");
    let named = r.err.contains(&format!("error: {missing}: "));
    assert!(named, "names the path: {r}");
    assert_eq!((summary(&r).files, alerts(&r).len()), (1, 1), "{r}");

    let locked = t.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(t.0.join("locked/inner.ndjson"), format!("{GOOD}\n")).unwrap();
    let secret = t.file("secret.ndjson", format!("{GOOD}\n"));
    let set = |p: &str, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    set(&locked, 0o000).unwrap();
    set(&secret, 0o000).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        eprintln!("skipping the permission cases: running as root");
    } else {
        for bad in [&locked, &secret] {
            let r = nd(&[bad, &ok]);
            assert_eq!(r.code, 2, "{r}");
            assert!(r.err.contains(&format!("error: {bad}")), "names {bad}: {r}");
            assert_eq!(alerts(&r).len(), 1, "ok.ndjson is still scanned: {r}");
            summary(&r);
        }
    }
    set(&locked, 0o755).unwrap();
}

#[test]
fn zstd_input_is_scanned_transparently() {
    let t = Tmp::new("zstd");
    let plain = t.file("plain.ndjson", format!("{GOOD}\n{ENABLE}\n"));
    let Some(zs) = compress("zstd", &plain) else {
        return;
    };
    let z = t.file("plain.ndjson.zst", &zs);
    let want = keys(&nd(&[&plain]));
    assert_eq!(want.len(), 2);
    let r = nd(&[&z]);
    assert_eq!((r.code, summary(&r).lines), (0, 2), "{r}");
    assert_eq!(keys(&r), want, "{r}");
    // Concatenated frames (rotated logs joined with `cat`) are read to the end.
    let two = t.file("two.zst", [zs.clone(), zs].concat());
    let r = nd(&[&two]);
    assert_eq!((summary(&r).lines, alerts(&r).len()), (4, 4), "{r}");
}

#[test]
fn empty_and_blank_inputs_are_accounted() {
    let t = Tmp::new("blank");
    let empty = t.file("empty.ndjson", "");
    let blank = t.file("blank.ndjson", "\n\n   \n\t\r\n");
    let r = scan(&[&empty], None);
    let s = summary(&r);
    assert_eq!((r.code, s.files, s.lines, s.alerts), (0, 1, 0, 0), "{r}");
    let r = nd(&[&empty, &blank]);
    let s = summary(&r);
    assert_eq!((r.code, s.files, s.lines, s.skipped), (0, 2, 4, 4), "{r}");
    for line in 1..=4 {
        assert!(skipped_at(&r, &blank, line).contains("blank"), "{r}");
    }
    let r = scan(&["-"], Some(Vec::new()));
    assert_eq!((r.code, summary(&r).lines), (0, 0), "{r}");
}

#[test]
fn crlf_line_endings_give_the_same_alerts() {
    let t = Tmp::new("crlf");
    let lf = t.file("lf.ndjson", format!("{GOOD}\n{ENABLE}\n"));
    let crlf = t.file("crlf.ndjson", format!("{GOOD}\r\n{ENABLE}\r\n"));
    let want = keys(&nd(&[&lf]));
    assert_eq!(want.len(), 2);
    let r = nd(&[&crlf]);
    let s = summary(&r);
    assert_eq!((s.lines, s.parsed, s.skipped), (2, 2, 0), "{r}");
    assert_eq!(keys(&r), want, "{r}");
}

#[test]
fn json_arrays_and_search_responses_are_scanned() {
    let t = Tmp::new("documents");
    let docs = [GOOD, ENABLE].map(|d| serde_json::from_str::<Value>(d).unwrap());
    let hit = |(i, d): (usize, &Value)| serde_json::json!({"_id": i.to_string(), "_source": d});
    let hits: Vec<Value> = docs.iter().enumerate().map(hit).collect();
    let response = serde_json::json!({"took": 3, "hits": {"total": {"value": 2}, "hits": hits}});
    let pretty = serde_json::to_string_pretty(&docs).unwrap();
    let cases = [
        ("array-pretty.json", pretty.clone()),
        ("array-crlf.json", pretty.replace('\n', "\r\n")),
        ("array-one-line.json", serde_json::to_string(&docs).unwrap()),
        ("response-one-line.json", response.to_string() + "\n"),
        (
            "response.json",
            serde_json::to_string_pretty(&response).unwrap(),
        ),
    ];
    for (name, text) in cases {
        let r = nd(&[&t.file(name, &text)]);
        let s = summary(&r);
        let lines = text.lines().count() as u64;
        assert_eq!((r.code, s.lines), (0, lines), "{name}: {r}");
        assert_eq!((s.events, s.skipped), (2, 0), "{name}: {r}");
        assert_eq!(alerts(&r).len(), 2, "{name}: {r}");
    }
}

/// Issue 15 item 12: a UTF-8 byte order mark (Excel's CSV, PowerShell's `Out-File`) before the
/// text is not part of it. Every format is sniffed as itself and gives the alerts it gives
/// without the mark, from a file, a gzip file and standard input, and nothing is skipped.
#[test]
fn a_byte_order_mark_changes_neither_format_nor_alerts() {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let recording = format!(
        "{root}/{}",
        common::shared("samples/auditd/dev-enriched.log")
    );
    let fixtures = format!("{root}/examples/atomic");
    let cases = [
        (
            "ecs.ndjson",
            format!("{fixtures}/ecs/adversary-tests.ndjson"),
            "ECS",
        ),
        ("audit.log", recording, "auditd"),
        (
            "laurel.json",
            format!("{fixtures}/laurel/adversary-tests.json"),
            "laurel",
        ),
        (
            "sysmon.syslog",
            format!("{fixtures}/sysmon/adversary-tests.syslog"),
            "sysmon",
        ),
        (
            "defender.csv",
            format!("{fixtures}/defender/adversary-tests.csv"),
            "defender-csv",
        ),
        (
            "defender.json",
            format!("{fixtures}/defender/adversary-tests.json"),
            "defender-json",
        ),
    ];
    let t = Tmp::new("bom");
    for (name, src, format) in cases {
        let plain = std::fs::read(&src).unwrap();
        let want = nd(&[&src]);
        let want_keys = keys(&want);
        assert!(!want_keys.is_empty(), "{name}: the fixture alerts: {want}");
        let marked = t.file(name, [BOM, &plain[..]].concat());
        let r = nd(&[&marked]);
        // (lines, skipped): for converted formats the summary's lines are source records.
        let count = |r: &Run| {
            let line = r.err.lines().find(|l| l.starts_with("unithunt scan: "));
            let line = line.unwrap_or_else(|| panic!("no summary: {r}"));
            let before = |tag: &str| -> u64 {
                let i = line.find(tag).unwrap();
                line[..i]
                    .split_whitespace()
                    .last()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            (before(" lines:"), before(" skipped;"))
        };
        assert_eq!(count(&r), (count(&want).0, 0), "{name} with a BOM: {r}");
        assert_eq!(keys(&r), want_keys, "{name} with a BOM: {r}");
        if format != "ECS" {
            let sniffed = format!("read as {format} (sniffed)");
            assert!(r.err.contains(&sniffed), "{name}: {r}");
        }
        let r = scan(&["-o", "ndjson", "-"], Some([BOM, &plain[..]].concat()));
        assert_eq!(keys(&r), want_keys, "{name} with a BOM on stdin: {r}");
        if let Some(gz) = compress("gzip", &marked) {
            let gz = t.file(&format!("{name}.gz"), gz);
            assert_eq!(keys(&nd(&[&gz])), want_keys, "{name}.gz with a BOM");
        }
    }
}
