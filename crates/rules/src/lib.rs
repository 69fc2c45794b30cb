//! The rule pack.
//!
//! # Brief overview
//!
//! A rule is a TOML file in the format of Elastic's detection-rules repository (`[metadata]`, `[rule]`
//! with `rule_id`, `name`, `type`, `language`, `query`, `risk_score`, `severity`, `[[rule.threat]]`
//! ...), so Elastic's own files load as they are. [`load_rule`] parses one file and compiles its EQL
//! query; errors name the file, line and column with a caret ([`RuleError`]). [`RulePack::builtin`]
//! is the pack embedded from `rules/`; [`RulePack::add_dir`] adds or replaces rules by `rule_id`.
//!
//! [`RuleSet`] compiles the enabled rules together: one literal [`Prefilter`] over every stage
//! predicate of every rule, so raw input is screened once for all rules. [`alert`] turns matches into
//! Elastic Security alert documents.
//!
//! ```
//! use unithunt_rules::{RulePack, RuleSet};
//! let set = RuleSet::new(RulePack::builtin());
//! // A unit file written by a shell: the pack's rules that match it, by name.
//! let event = serde_json::json!({
//!     "@timestamp": "2026-11-27T10:00:00Z",
//!     "event": {"category": ["file"], "type": ["creation"], "action": "creation"},
//!     "file": {"path": "/etc/systemd/system/evil.service", "extension": "service"},
//!     "process": {"name": "bash", "executable": "/usr/bin/bash"},
//!     "host": {"os": {"type": "linux"}},
//! });
//! let names = |event: &serde_json::Value| -> Vec<String> {
//!     let hits = set.evaluate(event, set.all_stages());
//!     hits.iter().map(|&(rule, _)| set.rules[rule].meta.name.clone()).collect()
//! };
//! assert!(names(&event).contains(&"Detect Systemd Service".to_string()));
//! // The same write outside systemd's directories matches no rule.
//! let mut elsewhere = event.clone();
//! elsewhere["file"]["path"] = "/tmp/notes.txt".into();
//! elsewhere["file"]["extension"] = "txt".into();
//! assert!(names(&elsewhere).is_empty());
//! ```

pub mod alert;
pub mod examples;
mod load;
mod set;
pub mod tuning;

pub use load::{is_elastic_toml, load_rule, load_sigma, Rule, RuleError, RuleMeta, RulePack};
pub use set::{RuleSet, StageRef};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
