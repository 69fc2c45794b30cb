//! `cargo run -p unithunt-conformance -- eql`: runs the endgame EQL suite (legacy dialect) and parses
//! every Elastic production EQL rule (Elasticsearch dialect), writes `docs/conformance/eql.md`, and
//! exits non-zero when a threshold is missed. The peer data is read from `../shared/peer/` and never
//! copied into this repository.

mod elasticsearch;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use unithunt_engine::{Output, RunOptions, Runner};
use unithunt_eql::{compile, fold_constant, EqlOptions};
use unithunt_event::{Json, Value};

const QUERY_THRESHOLD: f64 = 97.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Insensitive,
    Sensitive,
}

fn opts(mode: Mode) -> EqlOptions {
    EqlOptions {
        case_sensitive: mode == Mode::Sensitive,
        ..EqlOptions::legacy()
    }
}

fn modes(table: &toml::Table) -> Vec<Mode> {
    let cs = table
        .get("case_sensitive")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let ci = table
        .get("case_insensitive")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    match (cs, ci) {
        (true, false) => vec![Mode::Sensitive],
        (false, true) => vec![Mode::Insensitive],
        // Unmarked cases must hold in both modes.
        _ => vec![Mode::Insensitive, Mode::Sensitive],
    }
}

fn mode_label(m: &[Mode]) -> &'static str {
    match m {
        [Mode::Sensitive] => "case-sensitive",
        [Mode::Insensitive] => "case-insensitive",
        _ => "both",
    }
}

struct CaseResult {
    file: &'static str,
    index: usize,
    text: String,
    modes: &'static str,
    outcome: Outcome,
}

enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peer() -> PathBuf {
    root().join("../shared/peer")
}

fn run_query(query: &str, mode: Mode, events: &[Arc<Json>]) -> Result<Vec<i64>, String> {
    let q = compile(query, &opts(mode)).map_err(|e| format!("does not compile: {}", e.message))?;
    let mut runner = Runner::new(
        &q,
        RunOptions {
            max_samples_per_key: 1,
            ..RunOptions::default()
        },
    );
    for ev in events {
        let ts = ev
            .get("timestamp")
            .and_then(|t| {
                unithunt_event::parse_timestamp(t, unithunt_event::TimestampFormat::FileTime)
            })
            .unwrap_or(0);
        let mask = runner.evaluate(ev);
        runner.advance(ev.clone(), ts, mask);
    }
    let result = runner.finish();
    let mut ids = Vec::new();
    for out in &result.outputs {
        let evs: Vec<&Arc<Json>> = match out {
            Output::Event(e) => vec![e],
            Output::Sequence { events, .. } => events.iter().flatten().collect(),
        };
        for e in evs {
            ids.push(
                e.get("serial_event_id")
                    .and_then(Json::as_i64)
                    .unwrap_or(-1),
            );
        }
    }
    Ok(ids)
}

fn queries(events: &[Arc<Json>]) -> Vec<CaseResult> {
    let text = std::fs::read_to_string(peer().join("eql-endgame/test_queries.toml"))
        .expect("test_queries.toml");
    let doc: toml::Table = text.parse().expect("valid TOML");
    let mut out = Vec::new();
    for (i, case) in doc["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .enumerate()
    {
        let t = case.as_table().expect("table");
        let query = t["query"].as_str().unwrap_or_default().to_string();
        let expected: Vec<i64> = t["expected_event_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_integer()).collect())
            .unwrap_or_default();
        let ms = modes(t);
        let mut outcome = Outcome::Pass;
        for m in &ms {
            match run_query(&query, *m, events) {
                Err(e) => {
                    outcome = Outcome::Unsupported(e);
                    break;
                }
                Ok(got) if got != expected => {
                    outcome = Outcome::Fail(format!("{m:?}: expected {expected:?}, got {got:?}"));
                    break;
                }
                Ok(_) => {}
            }
        }
        out.push(CaseResult {
            file: "test_queries.toml",
            index: i,
            text: query,
            modes: mode_label(&ms),
            outcome,
        });
    }
    out
}

fn toml_to_value(v: Option<&toml::Value>) -> Value<'static> {
    match v {
        None => Value::Null,
        Some(toml::Value::Boolean(b)) => Value::Bool(*b),
        Some(toml::Value::Integer(i)) => Value::Int(*i),
        Some(toml::Value::Float(f)) => Value::Float(*f),
        Some(toml::Value::String(s)) => Value::Str(s.clone().into()),
        Some(other) => Value::Str(other.to_string().into()),
    }
}

fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => (x - y).abs() < 1e-9,
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

/// Folding-style suites: sections with `fold.tests`, `tests`, `verifier.failures` and `loop`s.
fn folding(file: &'static str) -> Vec<CaseResult> {
    let text = std::fs::read_to_string(peer().join("eql-endgame").join(file)).expect("suite file");
    let doc: toml::Table = text.parse().expect("valid TOML");
    let mut out = Vec::new();
    let mut index = 0;
    for (_, section) in doc.iter() {
        let Some(section) = section.as_table() else {
            continue;
        };
        let ms = modes(section);
        let mut cases: Vec<(String, Option<toml::Value>, bool)> = Vec::new();
        let add_tests =
            |tbl: Option<&toml::Value>,
             subst: Option<(&str, &str)>,
             cases: &mut Vec<(String, Option<toml::Value>, bool)>| {
                for t in tbl.and_then(|v| v.as_array()).into_iter().flatten() {
                    let mut expr = t
                        .get("expression")
                        .and_then(|e| e.as_str())
                        .unwrap_or_default()
                        .to_string();
                    if let Some((name, val)) = subst {
                        expr = expr.replace(&format!("${name}"), val);
                    }
                    cases.push((expr, t.get("expected").cloned(), false));
                }
            };
        add_tests(
            section.get("fold").and_then(|f| f.get("tests")),
            None,
            &mut cases,
        );
        add_tests(section.get("tests"), None, &mut cases);
        for f in section
            .get("verifier")
            .and_then(|v| v.get("failures"))
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let expr = f
                .get("expression")
                .and_then(|e| e.as_str())
                .unwrap_or_default()
                .to_string();
            cases.push((expr, None, true));
        }
        for lp in section
            .get("loop")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let param = lp.get("param");
            let name = param
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("value");
            for ty in param
                .and_then(|p| p.get("type"))
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
            {
                let val = match ty.as_str().unwrap_or_default() {
                    "bool" => "true",
                    "int" => "1",
                    "float" => "1.5",
                    "string" => "\"abc\"",
                    _ => "null",
                };
                add_tests(
                    lp.get("fold").and_then(|f| f.get("tests")),
                    Some((name, val)),
                    &mut cases,
                );
            }
        }
        for (expr, expected, must_fail) in cases {
            let mut outcome = Outcome::Pass;
            for m in &ms {
                let got = fold_constant(&expr, &opts(*m));
                match (got, must_fail) {
                    (Err(_), true) => {}
                    (Ok(v), true) => {
                        outcome = Outcome::Fail(format!("should be rejected, evaluated to {v}"));
                        break;
                    }
                    (Err(e), false) => {
                        outcome = Outcome::Unsupported(format!("does not compile: {}", e.message));
                        break;
                    }
                    (Ok(v), false) => {
                        let want = toml_to_value(expected.as_ref());
                        if !same(&v, &want) {
                            outcome = Outcome::Fail(format!("{m:?}: expected {want:?}, got {v:?}"));
                            break;
                        }
                    }
                }
            }
            out.push(CaseResult {
                file,
                index,
                text: expr,
                modes: mode_label(&ms),
                outcome,
            });
            index += 1;
        }
    }
    out
}

struct RuleResult {
    path: String,
    error: Option<String>,
}

fn elastic_rules() -> Vec<RuleResult> {
    let mut files = Vec::new();
    let mut stack = vec![peer().join("elastic-detection-rules/rules")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let base = peer().join("elastic-detection-rules");
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(doc) = text.parse::<toml::Table>() else {
            continue;
        };
        let Some(rule) = doc.get("rule").and_then(|r| r.as_table()) else {
            continue;
        };
        if rule.get("language").and_then(|l| l.as_str()) != Some("eql") {
            continue;
        }
        let query = rule
            .get("query")
            .and_then(|q| q.as_str())
            .unwrap_or_default();
        let error = compile(query, &EqlOptions::elasticsearch())
            .err()
            .map(|e| e.render(query, "query"));
        out.push(RuleResult {
            path: f.strip_prefix(&base).unwrap_or(&f).display().to_string(),
            error,
        });
    }
    out
}

fn cell(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let clipped: String = if one.chars().count() > 160 {
        one.chars().take(157).collect::<String>() + "..."
    } else {
        one
    };
    clipped.replace('|', "\\|")
}

fn summary(results: &[CaseResult]) -> (usize, usize, usize, f64) {
    let pass = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Pass))
        .count();
    let fail = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .count();
    let unsup = results.len() - pass - fail;
    (
        pass,
        fail,
        unsup,
        100.0 * pass as f64 / results.len().max(1) as f64,
    )
}

mod sigma;

fn main() -> ExitCode {
    let what = std::env::args().nth(1).unwrap_or_else(|| "eql".into());
    if what == "sigma" {
        let (md, ok) = sigma::run(&peer());
        let out = root().join("docs/conformance/sigma.md");
        std::fs::write(&out, md).expect("write docs/conformance/sigma.md");
        eprintln!("wrote {}", out.display());
        return if ok {
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "error: Sigma conformance below its thresholds (see docs/conformance/sigma.md)"
            );
            ExitCode::FAILURE
        };
    }
    if what != "eql" {
        eprintln!("usage: unithunt-conformance eql|sigma");
        return ExitCode::from(2);
    }
    let data = std::fs::read_to_string(peer().join("eql-endgame/test_data.json"))
        .expect("test_data.json (is ../shared/peer present?)");
    let events: Vec<Arc<Json>> = serde_json::from_str::<Vec<Json>>(&data)
        .expect("JSON array")
        .into_iter()
        .map(Arc::new)
        .collect();
    let suites = [
        ("test_queries.toml", queries(&events), QUERY_THRESHOLD),
        ("test_folding.toml", folding("test_folding.toml"), 100.0),
        (
            "test_string_functions.toml",
            folding("test_string_functions.toml"),
            100.0,
        ),
    ];
    let behaviours = elasticsearch::run();
    let rules = elastic_rules();
    let rules_ok = rules.iter().filter(|r| r.error.is_none()).count();
    let rules_pct = 100.0 * rules_ok as f64 / rules.len().max(1) as f64;

    let mut md = String::new();
    md.push_str("# EQL conformance\n\nGenerated by `cargo run -p unithunt-conformance -- eql` (CI runs it and fails below the thresholds). Do not edit by hand.\n\n");
    md.push_str("## endgameinc/eql suite (legacy dialect)\n\nSource: `../shared/peer/eql-endgame/` (AGPL-3.0, read at test time, not copied). Cases marked `case_sensitive` or `case_insensitive` run in that mode only; unmarked cases must pass in **both** modes.\n\n");
    md.push_str("| suite | cases | pass | fail | unsupported | pass rate | threshold |\n|---|---|---|---|---|---|---|\n");
    let mut ok = true;
    for (name, results, threshold) in &suites {
        let (p, f, u, pct) = summary(results);
        ok &= pct + 1e-9 >= *threshold;
        let _ = writeln!(
            md,
            "| `{name}` | {} | {p} | {f} | {u} | {pct:.1}% | {threshold}% |",
            results.len()
        );
    }
    ok &= rules_ok == rules.len();
    md.push_str("\n## Elasticsearch behaviours (Elasticsearch dialect)\n\nCases written from each behaviour's reference (`crates/conformance/cases/elasticsearch.toml`); every one must pass.\n\n| behaviour | source | cases | pass |\n|---|---|---|---|\n");
    for b in &behaviours {
        ok &= b.passed == b.cases;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&b.name),
            cell(&b.source),
            b.cases,
            b.passed
        );
    }
    for b in behaviours.iter().filter(|b| !b.failures.is_empty()) {
        for f in &b.failures {
            let _ = writeln!(md, "- {}: {}", cell(&b.name), cell(f));
        }
    }
    let _ = writeln!(md, "\n## Elastic production rules (Elasticsearch dialect)\n\nEvery rule with `language = \"eql\"` under `../shared/peer/elastic-detection-rules/rules/` parses and compiles: **{rules_ok} of {} ({rules_pct:.1}%)**; threshold 100%.\n", rules.len());
    for r in rules.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            md,
            "- `{}`:\n```\n{}```",
            r.path,
            r.error.as_deref().unwrap_or_default()
        );
    }
    md.push_str("\n## Cases not passing\n\n| suite | # | expression / query | modes | outcome | reason |\n|---|---|---|---|---|---|\n");
    for (_, results, _) in &suites {
        for r in results {
            let (o, why) = match &r.outcome {
                Outcome::Pass => continue,
                Outcome::Fail(w) => ("fail", w.as_str()),
                Outcome::Unsupported(w) => ("unsupported", w.as_str()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {o} | {} |",
                r.file,
                r.index,
                cell(&r.text),
                r.modes,
                cell(why)
            );
        }
    }
    md.push_str("\n## All cases\n\n| suite | # | expression / query | modes | outcome |\n|---|---|---|---|---|\n");
    for (_, results, _) in &suites {
        for r in results {
            let o = match r.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail(_) => "fail",
                Outcome::Unsupported(_) => "unsupported",
            };
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {o} |",
                r.file,
                r.index,
                cell(&r.text),
                r.modes
            );
        }
    }
    let path = root().join("docs/conformance/eql.md");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("docs dir");
    std::fs::write(&path, md).expect("write docs/conformance/eql.md");
    for (name, results, threshold) in &suites {
        let (p, f, u, pct) = summary(results);
        println!(
            "{name}: {p}/{} pass, {f} fail, {u} unsupported ({pct:.1}%, threshold {threshold}%)",
            results.len()
        );
    }
    println!(
        "elastic production EQL rules: {rules_ok}/{} compile ({rules_pct:.1}%, threshold 100%)",
        rules.len()
    );
    for b in &behaviours {
        println!(
            "Elasticsearch behaviour: {}: {}/{} cases pass",
            b.name, b.passed, b.cases
        );
        for f in &b.failures {
            println!("  {f}");
        }
    }
    println!("wrote {}", path.display());
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("conformance below threshold");
        ExitCode::FAILURE
    }
}
