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

pub mod alert;
pub mod examples;
mod load;
mod set;
pub mod tuning;

pub use load::{load_rule, load_sigma, Rule, RuleError, RuleMeta, RulePack};
pub use set::{RuleSet, StageRef};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
