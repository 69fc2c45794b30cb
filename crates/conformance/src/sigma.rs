//! `unithunt-conformance sigma`: loads and compiles every SigmaHQ rule under
//! `../shared/peer/sigma/` with the built-in ECS pipeline, loads every example of the Sigma
//! specification's `tests/schema/`, writes `docs/conformance/sigma.md`, and fails below the
//! thresholds (99% of rules compile; every Linux rule compiles; every schema example loads).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use unithunt_sigma::{compile, load_documents, Pipeline, SigmaDoc};

const COMPILE_THRESHOLD: f64 = 99.0;

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            yml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

/// The reason without the rule-specific part (for grouping).
fn category(message: &str) -> String {
    let m = message.split_once("`: ").map_or(message, |(_, rest)| rest);
    if m.starts_with("invalid pattern") {
        let why = m.rsplit("error: ").next().unwrap_or(m);
        return format!(
            "regular expression the Rust `regex` crate rejects: {}",
            why.lines().next().unwrap_or(why).trim()
        );
    }
    m.to_string()
}

pub fn run(peer: &Path) -> (String, bool) {
    let root = peer.join("sigma");
    let pipeline = Pipeline::ecs_linux();
    let mut files = Vec::new();
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        yml_files(&root.join(d), &mut files);
    }
    files.sort();
    let (mut rules, mut compiled, mut correlations, mut filters) = (0usize, 0usize, 0usize, 0usize);
    let (mut linux, mut linux_ok) = (0usize, 0usize);
    let mut load_errors: Vec<(String, String)> = Vec::new();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut linux_failures = Vec::new();
    // Linux rules with no literal every match must contain: every event is a candidate for them.
    let mut unscreened: Vec<String> = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                load_errors.push((rel, e.to_string()));
                continue;
            }
        };
        let docs = match load_documents(&text, &rel) {
            Ok(d) => d,
            Err(e) => {
                load_errors.push((rel, e.to_string()));
                continue;
            }
        };
        for d in docs {
            match d {
                SigmaDoc::Rule(r) => {
                    rules += 1;
                    let is_linux = r.logsource.product.as_deref() == Some("linux");
                    linux += usize::from(is_linux);
                    match compile(&r, &pipeline) {
                        Ok(e) => {
                            compiled += 1;
                            linux_ok += usize::from(is_linux);
                            if is_linux && unithunt_engine::required_literals(&e).is_empty() {
                                unscreened.push(rel.clone());
                            }
                        }
                        Err(e) => {
                            if is_linux {
                                linux_failures.push(format!("{rel}: {}", e.message));
                            }
                            failures
                                .entry(category(&e.message))
                                .or_default()
                                .push(rel.clone());
                        }
                    }
                }
                SigmaDoc::Correlation(c) => {
                    correlations += 1;
                    if let Err(e) = unithunt_sigma::correlation::CorrelationSpec::from_doc(&c) {
                        load_errors.push((rel.clone(), e));
                    }
                }
                SigmaDoc::Filter(_) => filters += 1,
            }
        }
    }
    // The specification's own examples.
    let spec = peer.join("sigma-spec/tests/schema");
    let mut examples = Vec::new();
    yml_files(&spec, &mut examples);
    examples.sort();
    let mut example_rows = String::new();
    let mut examples_ok = 0;
    for f in &examples {
        let rel = f.strip_prefix(&spec).unwrap_or(f).display().to_string();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let verdict = match load_documents(&text, &rel) {
            Ok(docs) if !docs.is_empty() => {
                examples_ok += 1;
                let kinds: Vec<&str> = docs
                    .iter()
                    .map(|d| match d {
                        SigmaDoc::Rule(r) => match compile(r, &pipeline) {
                            Ok(_) => "rule, compiles",
                            Err(_) => "rule, does not compile",
                        },
                        SigmaDoc::Correlation(_) => "correlation, loads",
                        SigmaDoc::Filter(_) => "filter, loads",
                    })
                    .collect();
                kinds.join("; ")
            }
            Ok(_) => "no document".to_string(),
            Err(e) => format!("error: {}", e.message),
        };
        let _ = writeln!(example_rows, "| `{rel}` | {verdict} |");
    }

    let pct = 100.0 * compiled as f64 / rules.max(1) as f64;
    let ok = pct >= COMPILE_THRESHOLD
        && linux_ok == linux
        && load_errors.is_empty()
        && examples_ok == examples.len();
    let mut md = String::new();
    md.push_str("# Sigma conformance\n\nGenerated by `cargo run -p unithunt-conformance -- sigma` (CI runs it and fails below the thresholds). Do not edit by hand.\n\n");
    md.push_str("Source: `../shared/peer/sigma/` (SigmaHQ rules, DRL 1.1; read at test time, not copied) and `../shared/peer/sigma-spec/tests/schema/`. Pipeline: `pipelines/ecs-linux.yml`.\n\n");
    let _ = writeln!(md, "| | count | threshold |\n|---|---|---|");
    let _ = writeln!(md, "| files | {} | |", files.len());
    let _ = writeln!(
        md,
        "| files that fail to load | {} | 0 |",
        load_errors.len()
    );
    let _ = writeln!(md, "| detection rules | {rules} | |");
    let _ = writeln!(
        md,
        "| compiled | {compiled} ({pct:.2}%) | ≥ {COMPILE_THRESHOLD}% |"
    );
    let _ = writeln!(
        md,
        "| Linux rules (`product: linux`) compiled | {linux_ok} of {linux} | all |"
    );
    let _ = writeln!(
        md,
        "| correlation rules (loaded and checked; `scan` runs them) | {correlations} | |"
    );
    let _ = writeln!(md, "| filters (loaded) | {filters} | |");
    let _ = writeln!(
        md,
        "| Linux rules the literal prefilter cannot screen (every event evaluated) | {} | |",
        unscreened.len()
    );
    md.push_str("\n## Rules that do not compile, by reason\n\nEach is refused on purpose: the rule asks for something this engine does not do, and says so rather than matching wrongly.\n\n");
    if failures.is_empty() {
        md.push_str("None.\n");
    }
    for (why, list) in &failures {
        let _ = writeln!(md, "### {why} ({})\n", list.len());
        for r in list {
            let _ = writeln!(md, "- `{r}`");
        }
        md.push('\n');
    }
    if !load_errors.is_empty() {
        md.push_str("## Files that do not load\n\n");
        for (f, e) in &load_errors {
            let _ = writeln!(md, "- `{f}`: {e}");
        }
        md.push('\n');
    }
    md.push_str(
        "## The specification's examples (`tests/schema/`)\n\n| file | result |\n|---|---|\n",
    );
    md.push_str(&example_rows);
    if !linux_failures.is_empty() {
        eprintln!("Linux rules that do not compile:");
        for f in &linux_failures {
            eprintln!("  {f}");
        }
    }
    (md, ok)
}
