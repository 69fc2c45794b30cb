//! `unithunt rules`: work with rule files. `list` and `show` describe the rules a scan would run,
//! `test` runs every rule over the example events its file carries, and `convert` prints the EQL
//! each Sigma rule compiles to, so a rule tested here can be taken to Elastic Security.

use crate::term::{escape, escape_lines};
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_rules::examples::{alerts_on, Expect};
use unithunt_rules::{Rule, RulePack};
use unithunt_sigma::{compile, load_documents, to_eql, Pipeline, SigmaDoc};

/// Which rules: the built-in pack and/or rule files, as `scan` takes them.
#[derive(clap::Args)]
pub struct RuleSource {
    /// Rule file or directory (Elastic TOML, Sigma YAML), repeatable; replaces built-in rules with
    /// the same rule_id.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Leave the built-in rule pack out.
    #[arg(long)]
    no_builtin: bool,
    /// Sigma processing pipeline (repeatable): pySigma YAML or unithunt's format; `ecs-linux`
    /// is the built-in one (the default).
    #[arg(long = "pipeline", value_name = "FILE")]
    pipeline: Vec<String>,
}

/// The pipelines `--pipeline` names, chained (the built-in one when none); notes are said.
fn load_pipeline(specs: &[String]) -> Result<Pipeline, ExitCode> {
    if specs.is_empty() {
        return Ok(Pipeline::ecs_linux());
    }
    match Pipeline::from_specs(specs) {
        Ok(p) => {
            for n in &p.notes {
                eprintln!("note: {}", escape(n));
            }
            Ok(p)
        }
        Err(e) => {
            eprintln!("error: {}", escape(&e));
            Err(ExitCode::from(2))
        }
    }
}

impl RuleSource {
    fn load(&self) -> Result<Vec<Rule>, ExitCode> {
        let mut pack = if self.no_builtin {
            RulePack::default()
        } else {
            RulePack::builtin()
        };
        if !self.pipeline.is_empty() {
            pack.sigma_pipeline = Some(std::sync::Arc::new(load_pipeline(&self.pipeline)?));
        }
        let mut failed = false;
        for r in &self.rules {
            for e in pack.add_path(r) {
                eprintln!("{}", escape(e.to_string().trim_end()));
                failed = true;
            }
        }
        if failed {
            return Err(ExitCode::from(2));
        }
        let mut rules = pack.rules;
        rules.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        Ok(rules)
    }
}

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, severity, risk score, confidence, examples, name, file.
    List {
        #[command(flatten)]
        source: RuleSource,
    },
    /// Show one rule whole: metadata, query, ATT&CK mapping, false positives, investigation guide
    /// and its examples.
    Show {
        /// rule_id, or a case-insensitive part of the name.
        rule: String,
        #[command(flatten)]
        source: RuleSource,
    },
    /// Run every rule over its example events: each true positive must alert and each true
    /// negative must not. A built-in rule without both kinds fails; other rules without examples
    /// are listed as untested. Exit 1 on any failure.
    Test {
        #[command(flatten)]
        source: RuleSource,
    },
    /// Print the coverage matrix (Markdown): each adversary test × input format × rule, alert or
    /// not, from the tests' recorded and rendered telemetry (docs/coverage.md is its output).
    Coverage {
        #[command(flatten)]
        source: RuleSource,
    },
    /// Print the EQL (Elasticsearch dialect) each Sigma rule compiles to, with the built-in ECS
    /// field mapping (pipelines/ecs-linux.yml) or the pipelines given.
    Convert {
        /// Sigma rule files (.yml; several documents each allowed).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Sigma processing pipeline (repeatable): pySigma YAML or unithunt's format;
        /// `ecs-linux` is the built-in one (the default).
        #[arg(long = "pipeline", value_name = "FILE")]
        pipeline: Vec<String>,
    },
}

pub fn run(cmd: RulesCommand) -> ExitCode {
    match cmd {
        RulesCommand::Convert { files, pipeline } => match load_pipeline(&pipeline) {
            Ok(p) => convert(&files, &p),
            Err(code) => code,
        },
        RulesCommand::List { source } => list(&source),
        RulesCommand::Show { rule, source } => show(&rule, &source),
        RulesCommand::Test { source } => test(&source),
        RulesCommand::Coverage { source } => match source.load() {
            Ok(rules) => {
                print!("{}", unithunt_atomic::coverage_markdown(&rules));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// The value of the rule's `Confidence: ...` tag, or `-`.
fn confidence(rule: &Rule) -> &str {
    rule.meta
        .tags
        .iter()
        .find_map(|t| t.strip_prefix("Confidence: "))
        .unwrap_or("-")
}

fn list(source: &RuleSource) -> ExitCode {
    let rules = match source.load() {
        Ok(r) => r,
        Err(code) => return code,
    };
    println!("{}", rule_table(rules.iter().map(|r| (r, ""))));
    ExitCode::SUCCESS
}

/// The rules as `rules list` and `scan --list-rules` print them: one row each, `kind` appended
/// to the name (a Sigma correlation).
pub fn rule_table<'a>(rules: impl Iterator<Item = (&'a Rule, &'a str)>) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "rule_id",
        "severity",
        "risk",
        "confidence",
        "examples",
        "name",
        "file",
    ]);
    for (r, kind) in rules {
        let (tp, tn) = counts(r);
        table.add_row([
            escape(&r.meta.rule_id),
            escape(&r.meta.severity),
            r.meta.risk_score.to_string(),
            escape(confidence(r)),
            format!("{tp}+{tn}"),
            format!("{}{kind}", escape(&r.meta.name)),
            escape(&r.meta.origin),
        ]);
    }
    table
}

fn counts(r: &Rule) -> (usize, usize) {
    let tp = r
        .meta
        .examples
        .iter()
        .filter(|e| e.expect == Expect::Alert)
        .count();
    (tp, r.meta.examples.len() - tp)
}

fn show(wanted: &str, source: &RuleSource) -> ExitCode {
    let rules = match source.load() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let needle = wanted.to_lowercase();
    let found: Vec<&Rule> = match rules.iter().find(|r| r.meta.rule_id == wanted) {
        Some(r) => vec![r],
        None => rules
            .iter()
            .filter(|r| r.meta.name.to_lowercase().contains(&needle))
            .collect(),
    };
    let r = match found.as_slice() {
        [one] => *one,
        [] => {
            eprintln!(
                "error: no rule has the id or a name containing {:?}",
                escape(wanted)
            );
            return ExitCode::from(2);
        }
        many => {
            eprintln!("error: {} rules match {:?}:", many.len(), escape(wanted));
            for r in many {
                eprintln!("  {}  {}", escape(&r.meta.rule_id), escape(&r.meta.name));
            }
            return ExitCode::from(2);
        }
    };
    let m = &r.meta;
    println!("{}", escape(&m.name));
    println!("  rule_id     {}", escape(&m.rule_id));
    println!("  file        {}", escape(&m.origin));
    println!(
        "  severity    {} (risk {}), confidence {}",
        escape(&m.severity),
        m.risk_score,
        escape(confidence(r))
    );
    println!("  tags        {}", escape(&m.tags.join(", ")));
    let mut attack = Vec::new();
    for t in m.threat.as_array().into_iter().flatten() {
        let tactic = t["tactic"]["id"].as_str().unwrap_or("?");
        for tech in t["technique"].as_array().into_iter().flatten() {
            let subs: Vec<&str> = tech["subtechnique"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str())
                .collect();
            let id = tech["id"].as_str().unwrap_or("?");
            if subs.is_empty() {
                attack.push(format!("{tactic} {id}"));
            } else {
                attack.extend(subs.iter().map(|s| format!("{tactic} {s}")));
            }
        }
    }
    println!("  ATT&CK      {}", escape(&attack.join(", ")));
    if let Some(why) = &r.unsupported {
        println!("  not run     {}", escape(why));
    }
    println!("\n{}\n", escape_lines(m.description.trim()));
    println!(
        "Query ({}):\n{}\n",
        escape(&m.language),
        escape_lines(r.query_text.trim())
    );
    if !m.false_positives.is_empty() {
        println!("False positives:");
        for f in &m.false_positives {
            println!("  - {}", escape(f));
        }
        println!();
    }
    if let Some(note) = &m.note {
        println!("{}\n", escape_lines(note.trim()));
    }
    let (tp, tn) = counts(r);
    println!(
        "Examples: {tp} that must alert, {tn} that must not (`unithunt rules test` runs them)"
    );
    for e in &m.examples {
        println!("  {:<5}  {}", e.expect.as_str(), escape(&e.why));
    }
    ExitCode::SUCCESS
}

fn test(source: &RuleSource) -> ExitCode {
    let rules = match source.load() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // The embedded pack's files: their rules must carry examples of both kinds.
    let embedded: std::collections::HashSet<String> = RulePack::builtin()
        .rules
        .into_iter()
        .map(|r| r.meta.origin)
        .collect();
    let (mut passed, mut failed, mut untested) = (0usize, 0usize, Vec::new());
    for r in &rules {
        let builtin = embedded.contains(&r.meta.origin);
        let (tp, tn) = counts(r);
        if r.query.is_none() {
            untested.push(format!(
                "{} (not run: {})",
                r.meta.name,
                r.unsupported.as_deref().unwrap_or("")
            ));
            continue;
        }
        if tp == 0 || tn == 0 {
            if builtin {
                println!(
                    "FAIL  {}: a built-in rule needs examples that alert and examples that do not ({tp}+{tn})",
                    escape(&r.meta.name)
                );
                failed += 1;
            } else if tp + tn == 0 {
                untested.push(r.meta.name.clone());
                continue;
            }
        }
        for (i, e) in r.meta.examples.iter().enumerate() {
            let alerted = alerts_on(r, e).unwrap_or(false);
            let ok = alerted == (e.expect == Expect::Alert);
            let verdict = if ok { "PASS" } else { "FAIL" };
            println!(
                "{verdict}  {}  example {} ({}): {}{}",
                escape(&r.meta.name),
                i + 1,
                e.expect.as_str(),
                escape(&e.why),
                if ok {
                    String::new()
                } else if alerted {
                    " -- alerted".into()
                } else {
                    " -- no alert".into()
                }
            );
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    for u in &untested {
        println!("untested  {}", escape(u));
    }
    println!(
        "{} rule(s): {passed} example(s) passed, {failed} failed, {} rule(s) untested",
        rules.len(),
        untested.len()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn convert(files: &[PathBuf], pipeline: &Pipeline) -> ExitCode {
    let mut failed = false;
    for f in files {
        let origin = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", escape(&origin));
                failed = true;
                continue;
            }
        };
        if unithunt_rules::is_elastic_toml(&text) {
            eprintln!(
                "error: {}: an Elastic rule (TOML) is EQL already: `unithunt rules show RULE_ID` prints its query; `rules convert` takes Sigma rules",
                escape(&origin)
            );
            failed = true;
            continue;
        }
        let docs = match load_documents(&text, &origin) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}", escape_lines(e.to_string().trim_end()));
                failed = true;
                continue;
            }
        };
        for d in docs {
            let SigmaDoc::Rule(rule) = d else {
                eprintln!(
                    "{}: a correlation or filter document has no EQL form of its own; skipped",
                    escape(&origin)
                );
                continue;
            };
            match compile(&rule, pipeline)
                .map_err(|e| e.to_string())
                .and_then(|e| to_eql(&e).map_err(|why| format!("error: {origin}: {why}")))
            {
                Ok(eql) => {
                    println!(
                        "// {}  ({})",
                        escape(&rule.title),
                        escape(rule.id.as_deref().unwrap_or("no id"))
                    );
                    // Escaped even into a file or pipe: a raw control character is never what
                    // a SIEM wants, and string literals already carry theirs as `\u{..}`.
                    println!("{}\n", escape_lines(&eql));
                }
                Err(e) => {
                    eprintln!("{}", escape(&e));
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
