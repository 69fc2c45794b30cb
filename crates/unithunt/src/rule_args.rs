//! The rule options `scan` and `watch` share: which rules run, and the tuning applied to them.

use crate::term::{escape, escape_lines};
use clap::Args;
use std::path::PathBuf;
use unithunt_rules::RulePack;

#[derive(Args, Clone)]
pub struct RuleArgs {
    /// Add or replace rules: a rule file or a directory of them (Elastic detection-rules TOML,
    /// or Sigma YAML).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Run only the rules given with --rules, not the built-in pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Sigma processing pipeline (repeatable, chained by `priority`): a pySigma pipeline YAML
    /// (field_name_mapping, prefixes, add_condition, placeholders with `vars`, rule_failure, under
    /// `logsource` rule conditions) or unithunt's format; `ecs-linux` names the built-in one,
    /// which is used when none is given.
    #[arg(long = "pipeline", value_name = "FILE")]
    pub pipeline: Vec<String>,
    /// Stop at the first rule file that does not load. By default `scan` runs the rules that
    /// loaded, reports each one that did not (file:line:col) and exits 2 at the end; `watch` and
    /// `stream` never start (or reload) with a rule missing.
    #[arg(long)]
    pub strict: bool,
    /// Tuning file (TOML, repeatable): Elastic-style exception items, per rule or global, that
    /// keep known-good activity quiet. Checked on load: a bad entry or an unknown rule_id is an
    /// error naming the file and line.
    #[arg(long = "tuning", value_name = "FILE")]
    pub tuning: Vec<PathBuf>,
}

impl RuleArgs {
    /// The rules as a set kept for the life of the process (`watch`, `stream`): sequence runners
    /// borrow their rule's query, and a rule unchanged by a reload keeps its runner (each reload
    /// keeps one more set alive, a few kB).
    pub fn load_kept(&self) -> Result<&'static unithunt_rules::RuleSet, String> {
        self.load_kept_with(&[])
    }

    /// The same with rules from a rules topic added after `--rules` (and tuned like them): one
    /// that does not load is said and left out, the others run (a bad rule published to the
    /// fleet must not stop every worker).
    pub fn load_kept_with(
        &self,
        extra: &[(String, bool, String)],
    ) -> Result<&'static unithunt_rules::RuleSet, String> {
        let pack = self.load_with(extra)?;
        Ok(Box::leak(Box::new(unithunt_rules::RuleSet::new(pack))))
    }

    fn load_with(&self, extra: &[(String, bool, String)]) -> Result<RulePack, String> {
        let loaded = self.load_parts(extra);
        if loaded.rule_errors.is_empty() && loaded.fatal.is_empty() {
            Ok(loaded.pack)
        } else {
            Err(loaded.rule_errors + &loaded.fatal)
        }
    }

    /// The pack with every rule file that loaded (`scan`: one bad Sigma rule in a folder of
    /// hundreds must not stop the others), what did not load, and what stops everything (the
    /// pipeline, the tuning: a half-applied tuning would raise what it exists to keep quiet).
    pub fn load_lenient(&self) -> Loaded {
        self.load_parts(&[])
    }

    fn load_parts(&self, extra: &[(String, bool, String)]) -> Loaded {
        let mut pack = if self.no_builtin {
            RulePack::default()
        } else {
            RulePack::builtin()
        };
        let mut rule_errors = String::new();
        if !self.pipeline.is_empty() {
            match unithunt_sigma::Pipeline::from_specs(&self.pipeline) {
                Ok(p) => {
                    for n in &p.notes {
                        eprintln!("note: {}", escape(n));
                    }
                    pack.sigma_pipeline = Some(std::sync::Arc::new(p));
                }
                Err(e) => {
                    return Loaded {
                        pack,
                        rule_errors,
                        fatal: format!("error: {}\n", escape(&e)),
                    }
                }
            }
        }
        for r in &self.rules {
            for e in pack.add_path(r) {
                // A rule's rendering quotes the file: each line escaped for the terminal.
                rule_errors.push_str(&ensure_newline(&escape_lines(&e.to_string())));
                if self.strict {
                    break;
                }
            }
            if self.strict && !rule_errors.is_empty() {
                break;
            }
        }
        let mut errors = String::new();
        let texts = extra
            .iter()
            .map(|(origin, sigma, text)| (origin.clone(), *sigma, Ok(text.clone())));
        for e in pack.add_texts(texts) {
            eprint!(
                "warning: a rule from the rules topic is left out:\n{}",
                ensure_newline(&escape(&e.to_string()))
            );
        }
        for t in &self.tuning {
            let shown = escape(&t.to_string_lossy());
            let loaded = std::fs::read_to_string(t)
                .map_err(|e| format!("error: {shown}: {e}"))
                .and_then(|text| {
                    unithunt_rules::tuning::load_tuning(&text, &t.to_string_lossy())
                        .map_err(|e| escape(&e.to_string()))
                })
                .and_then(|tuning| {
                    pack.apply_tuning(&tuning)
                        .map_err(|e| escape(&e.to_string()))
                });
            if let Err(e) = loaded {
                errors.push_str(&ensure_newline(&e));
            }
        }
        Loaded {
            pack,
            rule_errors,
            fatal: errors,
        }
    }
}

/// What loading the rules gave.
pub struct Loaded {
    pub pack: RulePack,
    /// The rule files that did not load, rendered (empty: all did).
    pub rule_errors: String,
    /// Errors that leave nothing to run (the pipeline, the tuning).
    pub fatal: String,
}

pub fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}
