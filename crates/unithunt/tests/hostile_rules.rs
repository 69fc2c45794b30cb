//! Hostile rules (issue 15, item 1): rule files and queries pulled from the internet can nest
//! without end. Deep nesting must be refused with an error naming the file, the line and the
//! column, through every door rules come in (`eql`, `scan --rules`, `--list-rules`, `watch`'s
//! SIGHUP reload); long *flat* `and`/`or` chains, which generated rule sets do write, must still
//! compile and match.

mod common;
use common::Tmp;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const EVENT: &str = r#"{"@timestamp":"2026-11-27T10:00:00Z","event":{"category":["process"],"type":["start"]},"process":{"pid":7,"name":"needle","executable":"/usr/bin/needle","command_line":"needle"},"host":{"name":"h"},"user":{"name":"root"}}"#;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_unithunt")
}

/// Runs the binary; a death by signal (the stack overflow this is about) fails the test.
fn run(args: &[&str]) -> (i32, String, String) {
    let o: Output = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let Some(code) = o.status.code() else {
        panic!("{args:?} died of a signal: {}", &err[..err.len().min(2000)]);
    };
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    (code, String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

/// An Elastic detection-rules TOML file around `query`, which starts on line 9.
fn toml_rule(query: &str) -> String {
    format!(
        "[metadata]\ncreation_date = \"2026/11/27\"\n\n[rule]\nname = \"hostile\"\nrule_id = \"0d8e6d2a-1111-4f0e-9c1e-000000000001\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\nrisk_score = 47\nseverity = \"medium\"\ndescription = \"d\"\n"
    )
}

/// A Sigma rule with one selection `sel` (and `other`) and `condition` on line 12.
fn sigma_rule(condition: &str) -> String {
    format!(
        "title: hostile\nid: 0d8e6d2a-2222-4f0e-9c1e-000000000002\nstatus: test\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image: /usr/bin/needle\n  other:\n    Image: /usr/bin/other\n  condition: {condition}\nlevel: high\n"
    )
}

/// The shapes the outside probe used, each far past any limit a parser recursing per level
/// survives on an 8 MiB stack.
fn deep_eql_queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "parentheses",
            format!("process where {}true{}", "(".repeat(5000), ")".repeat(5000)),
        ),
        (
            "not",
            format!("process where {}true", "not ".repeat(10_000)),
        ),
        (
            "function calls",
            format!(
                "process where {}process.name{} > 0",
                "length(".repeat(10_000),
                ")".repeat(10_000)
            ),
        ),
        (
            "unary minus",
            format!("process where process.pid == {}1", "-".repeat(100_000)),
        ),
        (
            "arithmetic chain",
            format!(
                "process where process.pid == {}",
                vec!["1"; 20_000].join(" + ")
            ),
        ),
    ]
}

#[test]
fn deeply_nested_eql_is_refused_with_file_line_and_column() {
    let t = Tmp::new("eql");
    let events = t.file("events.ndjson", format!("{EVENT}\n"));
    for (shape, query) in deep_eql_queries() {
        // The `eql` command, the query from a file.
        let qfile = t.file(&format!("{shape}.eql"), &query);
        let (code, _, err) = run(&["eql", "-f", &qfile, &events]);
        assert_eq!(code, 2, "{shape}: {err}");
        assert!(err.contains("nests deeper than"), "{shape}: {err}");
        assert!(err.contains(&format!("{qfile}:1:")), "{shape}: {err}");
        // The echoed line is a window, not the whole megabyte line.
        assert!(err.len() < 2000, "{shape}: {} bytes of error", err.len());

        // A rule file, through scan and --list-rules: the line is the query's line in the file.
        let dir = t.0.join(format!("rules-{}", shape.replace(' ', "-")));
        let rule = t.file(
            &format!("rules-{}/r.toml", shape.replace(' ', "-")),
            toml_rule(&query),
        );
        let dir = dir.to_str().unwrap();
        for args in [
            vec!["scan", "--no-builtin", "--rules", dir, &events],
            vec!["scan", "--no-builtin", "--rules", dir, "--list-rules"],
        ] {
            let (code, _, err) = run(&args);
            assert_eq!(code, 2, "{shape} {args:?}: {err}");
            assert!(err.contains("nests deeper than"), "{shape}: {err}");
            assert!(err.contains(&format!("{rule}:10:")), "{shape}: {err}");
        }
    }
}

#[test]
fn deeply_nested_sigma_conditions_are_refused_with_file_and_line() {
    let t = Tmp::new("sigma");
    let events = t.file("events.ndjson", format!("{EVENT}\n"));
    for (shape, condition) in [
        (
            "parentheses",
            format!("{}sel{}", "(".repeat(10_000), ")".repeat(10_000)),
        ),
        ("not", format!("{}sel", "not ".repeat(10_000))),
    ] {
        let rule = t.file(&format!("{shape}/r.yml"), sigma_rule(&condition));
        let dir = Path::new(&rule)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        for args in [
            vec!["scan", "--no-builtin", "--rules", &dir, &events],
            vec!["scan", "--no-builtin", "--rules", &dir, "--list-rules"],
        ] {
            let (code, _, err) = run(&args);
            assert_eq!(code, 2, "{shape} {args:?}: {err}");
            assert!(err.contains("nests deeper than 64"), "{shape}: {err}");
            assert!(err.contains(&format!("{rule}:12:")), "{shape}: {err}");
            assert!(err.len() < 2000, "{shape}: {} bytes of error", err.len());
        }
    }
}

#[test]
fn nesting_within_the_limit_still_matches() {
    let t = Tmp::new("within");
    let events = t.file("events.ndjson", format!("{EVENT}\n"));
    let query = format!(
        "process where {}process.name == \"needle\"{}",
        "(".repeat(60),
        ")".repeat(60)
    );
    let (code, out, err) = run(&["eql", &query, &events]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let condition = format!("{}sel{}", "not not (".repeat(20), ")".repeat(20));
    let dir = t.0.join("sigma");
    t.file("sigma/r.yml", sigma_rule(&condition));
    let (code, out, err) = run(&[
        "scan",
        "--no-builtin",
        "-o",
        "ndjson",
        "--rules",
        dir.to_str().unwrap(),
        &events,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn flat_chains_of_100k_terms_compile_and_match() {
    let t = Tmp::new("flat");
    let events = t.file("events.ndjson", format!("{EVENT}\n"));
    // `or`: only the last of 100,000 terms matches.
    let mut terms: Vec<String> = (0..99_999)
        .map(|i| format!("process.name == \"n{i}\""))
        .collect();
    terms.push("process.name == \"needle\"".into());
    let or = t.file("or.eql", format!("process where {}", terms.join(" or ")));
    // `and`: 100,000 terms that all hold (the event's pid is 7).
    let and_terms: Vec<String> = (10..100_010)
        .map(|i| format!("process.pid != {i}"))
        .collect();
    let and = t.file(
        "and.eql",
        format!("process where {}", and_terms.join(" and ")),
    );
    // The same `and` with one failing term at the end.
    let and_false = t.file(
        "and-false.eql",
        format!(
            "process where {} and process.pid != 7",
            and_terms.join(" and ")
        ),
    );
    for (q, want) in [(&or, 1), (&and, 1), (&and_false, 0)] {
        let (code, out, err) = run(&["eql", "-f", q, &events]);
        assert_eq!(code, if want == 0 { 1 } else { 0 }, "{q}: {err}");
        assert_eq!(out.lines().count(), want, "{q}: {out}");
    }
    // A rule file with the flat `or` chain, through scan.
    let query = std::fs::read_to_string(&or).unwrap();
    let dir = t.0.join("rules");
    t.file("rules/r.toml", toml_rule(&query));
    let (code, out, err) = run(&[
        "scan",
        "--no-builtin",
        "-o",
        "ndjson",
        "--rules",
        dir.to_str().unwrap(),
        &events,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    // A Sigma condition chaining 20,000 terms flat: `other or ... or sel`.
    let mut chain = vec!["other"; 19_999];
    chain.push("sel");
    let sdir = t.0.join("sigma");
    t.file("sigma/r.yml", sigma_rule(&chain.join(" or ")));
    let (code, out, err) = run(&[
        "scan",
        "--no-builtin",
        "-o",
        "ndjson",
        "--rules",
        sdir.to_str().unwrap(),
        &events,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// A live `watch` whose rule directory is replaced by a deeply nested rule survives the SIGHUP
/// reload: it says why the reload was refused and keeps detecting with the previous rules.
#[test]
fn watch_survives_reloading_a_deeply_nested_rule() {
    let t = Tmp::new("watch");
    let rules = t.0.join("rules");
    let rule = t.file(
        "rules/r.toml",
        toml_rule("process where process.name == \"needle\""),
    );
    let log = t.file("events.ndjson", "");
    let mut child = Command::new(bin())
        .args([
            "watch",
            "--input-format",
            "ecs",
            "--no-builtin",
            "-o",
            "ndjson",
        ])
        .arg("--rules")
        .arg(&rules)
        .arg("--checkpoint")
        .arg(t.0.join("cp"))
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&rule, toml_rule(&deep_eql_queries()[0].1)).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "{EVENT}").unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(1500));
    let alive = child.try_wait().unwrap().is_none();
    // SAFETY: as above.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(alive, "watch died on the reload: {err}");
    assert!(err.contains("rules not reloaded"), "{err}");
    assert!(err.contains("nests deeper than"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "the previous rule still detects: {err}"
    );
}

/// Runs the binary, killing it after `deadline`: a run that needs longer is a hang (a quadratic
/// blow-up at these sizes takes many minutes; linear work takes seconds even in a debug build).
fn run_or_hang(args: &[&str], deadline: Duration) -> (i32, String, String) {
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Output is drained while the child runs (an alert carries a 200 KB event: more than a pipe
    // holds).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || drop(tx.send(child.wait_with_output())));
    let Ok(o) = rx.recv_timeout(deadline) else {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        panic!(
            "{:?} still running after {deadline:?}",
            &args[..args.len().min(4)]
        );
    };
    let o = o.unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code().expect("exited, not killed by a signal");
    (code, String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

/// Item 9: rule shapes whose compilation was quadratic (a 30,000-character `base64offset` value,
/// 8,000 selections under `1 of s*`, 20,000 `contains` values) load and match, over events with
/// 200 KB strings.
#[test]
fn large_sigma_rules_compile_in_linear_work() {
    let t = Tmp::new("large");
    // Deterministic letters, no repeats short enough to merge.
    let text = |n: usize, seed: u64| -> String {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (b'a' + (x >> 59) as u8 % 26) as char
            })
            .collect()
    };
    let long = text(30_000, 1);
    let encoded = {
        // The event's command line carries the value base64-encoded at offset 0.
        use std::fmt::Write as _;
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in long.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..=chunk.len() {
                let _ = out.write_char(table[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    };
    let padding = "x".repeat(200_000);
    let event = |cmd: &str, exe: &str| {
        format!(
            r#"{{"@timestamp":"2026-11-27T10:00:00Z","event":{{"category":["process"],"type":["start"]}},"process":{{"name":"x","executable":"{exe}","command_line":"{padding} {cmd}","args":["{padding}"]}},"host":{{"name":"h"}}}}"#
        )
    };
    let values: Vec<String> = (0..20_000)
        .map(|i| format!("{}{i}", text(12, i + 7)))
        .collect();
    let events = t.file(
        "events.ndjson",
        [
            event(&encoded, "/bin/none"),
            event(&values[19_999], "/bin/none"),
            event("nothing", "/bin/x7999"),
            event("nothing", "/bin/none"),
        ]
        .join("\n"),
    );
    let rule = |name: &str, det: String, cond: &str| {
        format!("title: {name}\nid: 0d8e6d2a-4444-4f0e-9c1e-00000000000{}\nstatus: test\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n{det}  condition: {cond}\nlevel: high\n", name.len())
    };
    let selections: String = (0..8_000)
        .map(|i| format!("  s{i}:\n    Image: /bin/x{i}\n"))
        .collect();
    let contains: String = values.iter().map(|v| format!("      - '{v}'\n")).collect();
    for (name, det, cond) in [
        (
            "b",
            format!("  sel:\n    CommandLine|base64offset|contains: '{long}'\n"),
            "sel",
        ),
        ("sel", selections, "1 of s*"),
        (
            "cont",
            format!("  sel:\n    CommandLine|contains:\n{contains}"),
            "sel",
        ),
    ] {
        let dir = t.0.join(name);
        t.file(&format!("{name}/r.yml"), rule(name, det, cond));
        let started = std::time::Instant::now();
        let (code, out, err) = run_or_hang(
            &[
                "scan",
                "--no-builtin",
                "-o",
                "ndjson",
                "--rules",
                dir.to_str().unwrap(),
                &events,
            ],
            Duration::from_secs(120),
        );
        eprintln!("{name}: {:?}", started.elapsed());
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(out.lines().count(), 1, "{name}: one event matches: {err}");
    }
}
