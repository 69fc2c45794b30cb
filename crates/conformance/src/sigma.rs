//! `unithunt-conformance sigma`: loads and compiles every SigmaHQ rule under
//! `../shared/peer/sigma/` with the built-in ECS pipeline, loads every example of the Sigma
//! specification's `tests/schema/`, writes `docs/conformance/sigma.md`, and fails below the
//! thresholds (99% of rules compile; every Linux rule compiles; every schema example loads).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use unithunt_sigma::{compile, load_documents, Pipeline, SigmaDoc, SigmaRule};

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

/// What loading and compiling the SigmaHQ rule files found.
#[derive(Default)]
struct RuleTally {
    files: usize,
    rules: usize,
    compiled: usize,
    correlations: usize,
    filters: usize,
    linux: usize,
    linux_ok: usize,
    /// (file, error) for files that do not load and correlations that do not check.
    load_errors: Vec<(String, String)>,
    /// Files of rules that do not compile, by [`category`] of the reason.
    failures: BTreeMap<String, Vec<String>>,
    linux_failures: Vec<String>,
    /// Linux rules with no literal every match must contain: every event is a candidate for them.
    unscreened: Vec<String>,
}

impl RuleTally {
    /// Load every rule file under the SigmaHQ rule directories of `root` and compile its rules.
    fn collect(root: &Path, pipeline: &Pipeline) -> Self {
        let mut files = Vec::new();
        for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
            yml_files(&root.join(d), &mut files);
        }
        files.sort();
        let mut t = RuleTally {
            files: files.len(),
            ..Default::default()
        };
        for f in &files {
            let rel = f.strip_prefix(root).unwrap_or(f).display().to_string();
            t.add_file(f, rel, pipeline);
        }
        t
    }

    fn add_file(&mut self, f: &Path, rel: String, pipeline: &Pipeline) {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                self.load_errors.push((rel, e.to_string()));
                return;
            }
        };
        let docs = match load_documents(&text, &rel) {
            Ok(d) => d,
            Err(e) => {
                self.load_errors.push((rel, e.to_string()));
                return;
            }
        };
        for d in docs {
            match d {
                SigmaDoc::Rule(r) => self.add_rule(&r, &rel, pipeline),
                SigmaDoc::Correlation(c) => {
                    self.correlations += 1;
                    if let Err(e) = unithunt_sigma::correlation::CorrelationSpec::from_doc(&c) {
                        self.load_errors.push((rel.clone(), e));
                    }
                }
                SigmaDoc::Filter(_) => self.filters += 1,
            }
        }
    }

    fn add_rule(&mut self, r: &SigmaRule, rel: &str, pipeline: &Pipeline) {
        self.rules += 1;
        let is_linux = r.logsource.product.as_deref() == Some("linux");
        self.linux += usize::from(is_linux);
        match compile(r, pipeline) {
            Ok(e) => {
                self.compiled += 1;
                self.linux_ok += usize::from(is_linux);
                if is_linux && unithunt_engine::required_literals(&e).is_empty() {
                    self.unscreened.push(rel.to_string());
                }
            }
            Err(e) => {
                if is_linux {
                    self.linux_failures.push(format!("{rel}: {}", e.message));
                }
                self.failures
                    .entry(category(&e.message))
                    .or_default()
                    .push(rel.to_string());
            }
        }
    }

    /// Percentage of detection rules that compile.
    fn compiled_pct(&self) -> f64 {
        100.0 * self.compiled as f64 / self.rules.max(1) as f64
    }
}

/// How the specification's own examples (`tests/schema/`) load.
struct SpecExamples {
    total: usize,
    loaded: usize,
    /// Markdown table rows: `| file | result |`.
    rows: String,
}

impl SpecExamples {
    fn collect(spec: &Path, pipeline: &Pipeline) -> Self {
        let mut examples = Vec::new();
        yml_files(spec, &mut examples);
        examples.sort();
        let mut rows = String::new();
        let mut loaded = 0;
        for f in &examples {
            let rel = f.strip_prefix(spec).unwrap_or(f).display().to_string();
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let verdict = match load_documents(&text, &rel) {
                Ok(docs) if !docs.is_empty() => {
                    loaded += 1;
                    example_verdict(&docs, pipeline)
                }
                Ok(_) => "no document".to_string(),
                Err(e) => format!("error: {}", e.message),
            };
            let _ = writeln!(rows, "| `{rel}` | {verdict} |");
        }
        SpecExamples {
            total: examples.len(),
            loaded,
            rows,
        }
    }
}

/// What each document of a loaded example is, and whether its rules compile.
fn example_verdict(docs: &[SigmaDoc], pipeline: &Pipeline) -> String {
    let kinds: Vec<&str> = docs
        .iter()
        .map(|d| match d {
            SigmaDoc::Rule(r) => match compile(r, pipeline) {
                Ok(_) => "rule, compiles",
                Err(_) => "rule, does not compile",
            },
            SigmaDoc::Correlation(_) => "correlation, loads",
            SigmaDoc::Filter(_) => "filter, loads",
        })
        .collect();
    kinds.join("; ")
}

/// The summary table at the top of the report.
fn push_summary(md: &mut String, t: &RuleTally) {
    let pct = t.compiled_pct();
    let _ = writeln!(md, "| | count | threshold |\n|---|---|---|");
    let _ = writeln!(md, "| files | {} | |", t.files);
    let _ = writeln!(
        md,
        "| files that fail to load | {} | 0 |",
        t.load_errors.len()
    );
    let _ = writeln!(md, "| detection rules | {} | |", t.rules);
    let _ = writeln!(
        md,
        "| compiled | {} ({pct:.2}%) | ≥ {COMPILE_THRESHOLD}% |",
        t.compiled
    );
    let _ = writeln!(
        md,
        "| Linux rules (`product: linux`) compiled | {} of {} | all |",
        t.linux_ok, t.linux
    );
    let _ = writeln!(
        md,
        "| correlation rules (loaded and checked; `scan` runs them) | {} | |",
        t.correlations
    );
    let _ = writeln!(md, "| filters (loaded) | {} | |", t.filters);
    let _ = writeln!(
        md,
        "| Linux rules the literal prefilter cannot screen (every event evaluated) | {} | |",
        t.unscreened.len()
    );
}

/// The whole of `docs/conformance/sigma.md`.
fn render_report(t: &RuleTally, examples: &SpecExamples) -> String {
    let mut md = String::new();
    md.push_str("# Sigma conformance\n\nGenerated by `cargo run -p unithunt-conformance -- sigma` (CI runs it and fails below the thresholds). Do not edit by hand.\n\n");
    md.push_str("Source: `../shared/peer/sigma/` (SigmaHQ rules, DRL 1.1; read at test time, not copied) and `../shared/peer/sigma-spec/tests/schema/`. Pipeline: `pipelines/ecs-linux.yml`.\n\n");
    push_summary(&mut md, t);
    md.push_str("\n## Rules that do not compile, by reason\n\nEach is refused on purpose: the rule asks for something this engine does not do, and says so rather than matching wrongly.\n\n");
    if t.failures.is_empty() {
        md.push_str("None.\n");
    }
    for (why, list) in &t.failures {
        let _ = writeln!(md, "### {why} ({})\n", list.len());
        for r in list {
            let _ = writeln!(md, "- `{r}`");
        }
        md.push('\n');
    }
    if !t.load_errors.is_empty() {
        md.push_str("## Files that do not load\n\n");
        for (f, e) in &t.load_errors {
            let _ = writeln!(md, "- `{f}`: {e}");
        }
        md.push('\n');
    }
    md.push_str(
        "## The specification's examples (`tests/schema/`)\n\n| file | result |\n|---|---|\n",
    );
    md.push_str(&examples.rows);
    md
}

pub fn run(peer: &Path) -> (String, bool) {
    let pipeline = Pipeline::ecs_linux();
    let tally = RuleTally::collect(&peer.join("sigma"), &pipeline);
    // The specification's own examples.
    let examples = SpecExamples::collect(&peer.join("sigma-spec/tests/schema"), &pipeline);
    let ok = tally.compiled_pct() >= COMPILE_THRESHOLD
        && tally.linux_ok == tally.linux
        && tally.load_errors.is_empty()
        && examples.loaded == examples.total;
    let md = render_report(&tally, &examples);
    if !tally.linux_failures.is_empty() {
        eprintln!("Linux rules that do not compile:");
        for f in &tally.linux_failures {
            eprintln!("  {f}");
        }
    }
    (md, ok)
}
