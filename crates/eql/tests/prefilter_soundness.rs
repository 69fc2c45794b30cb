//! The literal prefilter must never reject an event that a predicate matches. This test generates
//! events from a vocabulary built to trip it (case variants, escapes, non-ASCII, arrays, dotted keys)
//! and checks, for a set of queries, that every matching event's raw line passes the prefilter.

use unithunt_engine::{is_true, EvalCtx, Expr, Prefilter, QueryKind};
use unithunt_eql::{compile, EqlOptions};

/// A tiny deterministic generator (xorshift); the test needs no external randomness.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "systemctl",
    "SYSTEMCTL",
    "SystemCtl",
    "dpkg",
    "bash",
    "python3.11",
    "enable",
    "ENABLE",
    "daemon-reload",
    "/etc/systemd/system/a.service",
    "/ETC/SYSTEMD/SYSTEM/B.SERVICE",
    "/home/u/.config/systemd/user/x.service",
    "/run/systemd/system/evil.service",
    "service",
    "SERVICE",
    "file",
    "process",
    "creation",
    "change",
    "start",
    "syst\\u0065mctl",
    "\\/etc\\/systemd\\/system\\/c.service",
    "caf\u{e9}",
    "\u{212a}elvin",
    "ansible-playbook",
    "a\\\"quoted\\\"",
    "C:\\\\Windows\\\\x.exe",
    "",
];

fn value(rng: &mut Rng) -> String {
    match rng.next() % 5 {
        0 => format!("[\"{}\", \"{}\"]", rng.pick(WORDS), rng.pick(WORDS)),
        1 => (rng.next() % 100).to_string(),
        _ => format!("\"{}\"", rng.pick(WORDS)),
    }
}

fn event(rng: &mut Rng) -> String {
    let mut fields = vec![
        format!(
            "\"event\": {{\"category\": {}, \"type\": {}}}",
            value(rng),
            value(rng)
        ),
        format!(
            "\"file\": {{\"path\": {}, \"extension\": {}}}",
            value(rng),
            value(rng)
        ),
    ];
    match rng.next() % 3 {
        0 => fields.push(format!(
            "\"process.name\": {}, \"process.args\": {}",
            value(rng),
            value(rng)
        )),
        1 => fields.push(format!(
            "\"process\": {{\"name\": {}, \"args\": {}, \"parent\": {{\"name\": {}}}}}",
            value(rng),
            value(rng),
            value(rng)
        )),
        _ => {}
    }
    format!("{{{}}}", fields.join(", "))
}

const QUERIES: &[&str] = &[
    include_str!("seed_rule.eql"),
    r#"process where process.name == "systemctl""#,
    r#"process where process.name : "SYSTEMCTL" and process.args : ("enable", "daemon-*")"#,
    r#"any where file.path like~ "/etc/systemd/*.service""#,
    r#"any where file.path in~ ("/etc/systemd/system/a.service", "x")"#,
    r#"any where startsWith~(process.name, "SYS") or endsWith(file.path, ".service")"#,
    r#"any where stringContains(file.path, "systemd") and not process.name : "dpkg""#,
    r#"any where process.name : "kelvin" or process.name : "café""#,
    r#"file where file.path : "*systemd*" and file.extension : "service""#,
];

#[test]
fn prefilter_never_rejects_a_match() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let compiled: Vec<(String, Expr)> = QUERIES
        .iter()
        .map(|q| {
            let query = compile(q, &EqlOptions::elasticsearch()).expect("query compiles");
            match query.kind {
                QueryKind::Events(e) => (q.to_string(), e),
                _ => unreachable!(),
            }
        })
        .collect();
    let filters: Vec<Prefilter> = compiled.iter().map(|(_, e)| Prefilter::new(&[e])).collect();
    let mut matches = 0;
    let mut rejected = 0;
    for _ in 0..20_000 {
        let line = event(&mut rng);
        let doc: serde_json::Value = match serde_json::from_str(&line) {
            Ok(d) => d,
            Err(e) => panic!("generator made bad JSON {line}: {e}"),
        };
        for ((text, expr), pf) in compiled.iter().zip(&filters) {
            let pass = pf.any(line.as_bytes());
            let hit = is_true(expr, &mut EvalCtx::new(&doc));
            assert!(
                !hit || pass,
                "prefilter rejected a match\nquery: {text}\nevent: {line}"
            );
            matches += usize::from(hit);
            rejected += usize::from(!pass);
        }
    }
    // The block screen (one pass over many lines, as `scan` uses it) must agree: every line on which a
    // predicate matches is returned with that predicate.
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let lines: Vec<String> = (0..5000).map(|_| event(&mut rng)).collect();
    let mut text = Vec::new();
    let mut starts = Vec::new();
    for l in &lines {
        starts.push(text.len());
        text.extend_from_slice(l.as_bytes());
        text.push(b'\n');
    }
    for ((query, expr), pf) in compiled.iter().zip(&filters) {
        let screened = pf.scan_block(&text);
        for (i, l) in lines.iter().enumerate() {
            let doc: serde_json::Value = serde_json::from_str(l).unwrap();
            if is_true(expr, &mut EvalCtx::new(&doc)) {
                let flagged = screened
                    .iter()
                    .any(|(line, preds)| *line == starts[i] && preds.contains(&0))
                    || !pf.always().is_empty();
                assert!(
                    flagged,
                    "block screen missed a match\nquery: {query}\nevent: {l}"
                );
            }
        }
    }
    // Deciding on values (as `scan` does with a big rule set): every line on which a predicate
    // matches is flagged by the first pass, and the predicate is among the candidates read from
    // the line's values, parsed whole or projected to the fields the predicates read.
    let exprs: Vec<&Expr> = compiled.iter().map(|(_, e)| e).collect();
    let all = Prefilter::new(&exprs);
    let fields: Vec<_> = exprs
        .iter()
        .flat_map(|e| e.referenced_fields().expect("fields known"))
        .collect();
    let projection = unithunt_event::Projection::new(&fields).expect("a projection");
    let flagged: Vec<usize> = all.flag_block(&text).lines.iter().map(|l| l.0).collect();
    let mut decided_on_values = 0;
    for (i, l) in lines.iter().enumerate() {
        let doc: serde_json::Value = serde_json::from_str(l).unwrap();
        let projected = unithunt_event::parse_projected(l.as_bytes(), &projection);
        for (q, (query, expr)) in compiled.iter().enumerate() {
            if !is_true(expr, &mut EvalCtx::new(&doc)) || all.always().contains(&q) {
                continue;
            }
            assert!(
                flagged.contains(&starts[i]),
                "first pass missed a match\nquery: {query}\nevent: {l}"
            );
            for d in std::iter::once(&doc).chain(projected.as_ref()) {
                let mut cands = Vec::new();
                all.candidates_in_values(d, &mut cands);
                assert!(
                    cands.contains(&q),
                    "values missed a match\nquery: {query}\nevent: {l}\nvalues of: {d}"
                );
                decided_on_values += 1;
            }
        }
    }
    assert!(decided_on_values > 1000, "{decided_on_values}");
    // The test is only meaningful if both outcomes occur often.
    assert!(
        matches > 1000,
        "too few matches ({matches}) to exercise the prefilter"
    );
    assert!(
        rejected > 1000,
        "the prefilter rejected too little ({rejected}) to be useful"
    );
}
