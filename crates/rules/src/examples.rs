//! Example events carried by rule files, and running a rule over them.
//!
//! A rule file may hold, next to Elastic's `[metadata]` and `[rule]`, unithunt's own examples:
//!
//! ```toml
//! [[unithunt.example]]
//! expect = "alert"            # or "quiet"
//! why = "the seed's Test 4"   # what the example stands for
//! events = ['''{"@timestamp": "...", "event": {...}, ...}''']
//! ```
//!
//! `events` are ECS documents in time order; a sequence rule's example holds every event of the
//! sequence. `unithunt rules test` runs each rule over each of its examples, alone, and checks the
//! outcome: a true-positive example must alert, a true-negative one must not.

use crate::load::{Rule, RuleError};
use serde::Deserialize;
use std::sync::Arc;
use unithunt_engine::{RunOptions, Runner};
use unithunt_event::{lookup_one, parse_timestamp, FieldPath, Json, TimestampFormat};

/// What an example expects of its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A true positive: the rule must alert.
    Alert,
    /// A true negative: the rule must stay quiet.
    Quiet,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Alert => "alert",
            Expect::Quiet => "quiet",
        }
    }
}

/// One example of a rule: events and the expected outcome.
#[derive(Clone, Debug)]
pub struct RuleExample {
    pub expect: Expect,
    pub why: String,
    pub events: Vec<Json>,
}

/// `[[unithunt.example]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleToml {
    expect: String,
    #[serde(default)]
    why: String,
    events: Vec<String>,
}

/// Checks and parses the examples of a rule file; an error names the example and the file.
pub(crate) fn parse(
    raw: Vec<toml::Spanned<ExampleToml>>,
    text: &str,
    origin: &str,
) -> Result<Vec<RuleExample>, RuleError> {
    let mut out = Vec::new();
    for (n, spanned) in raw.into_iter().enumerate() {
        let line = text[..spanned.span().start.min(text.len())].lines().count() + 1;
        let fail = |message: String| RuleError {
            origin: format!("{origin}:{line}"),
            message: format!("example {}: {message}", n + 1),
            rendered: None,
        };
        let ex = spanned.into_inner();
        let expect = match ex.expect.as_str() {
            "alert" => Expect::Alert,
            "quiet" => Expect::Quiet,
            other => {
                return Err(fail(format!(
                    "expect is {other:?}; it must be \"alert\" or \"quiet\""
                )))
            }
        };
        if ex.events.is_empty() {
            return Err(fail("no events".into()));
        }
        let mut events = Vec::new();
        for (i, e) in ex.events.iter().enumerate() {
            match serde_json::from_str::<Json>(e) {
                Ok(doc @ Json::Object(_)) => events.push(doc),
                Ok(_) => return Err(fail(format!("event {} is not a JSON object", i + 1))),
                Err(err) => return Err(fail(format!("event {}: {err}", i + 1))),
            }
        }
        out.push(RuleExample {
            expect,
            why: ex.why,
            events,
        });
    }
    Ok(out)
}

/// Whether `rule` alerts on the example's events, run alone and in the order given, times read
/// from `@timestamp` (sequences' `maxspan` applies). `None` when the rule has no runnable query.
pub fn alerts_on(rule: &Rule, example: &RuleExample) -> Option<bool> {
    let query = rule.query.as_ref()?;
    let mut runner = Runner::new(query, RunOptions::default());
    let ts_path = FieldPath::parse("@timestamp");
    for doc in &example.events {
        let ts = lookup_one(doc, &ts_path)
            .and_then(|t| parse_timestamp(t, TimestampFormat::Auto))
            .unwrap_or(0);
        let mask = runner.evaluate(doc);
        runner.advance(Arc::new(doc.clone()), ts, mask);
    }
    Some(!runner.finish().outputs.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_rule;

    const RULE: &str = r#"
[rule]
rule_id = "x"
name = "x"
type = "eql"
language = "eql"
risk_score = 21
severity = "low"
query = 'process where process.name == "systemctl"'

[[unithunt.example]]
expect = "alert"
events = ['{"event": {"category": ["process"]}, "process": {"name": "systemctl"}}']

[[unithunt.example]]
expect = "quiet"
why = "another program"
events = ['{"event": {"category": ["process"]}, "process": {"name": "ls"}}']
"#;

    #[test]
    fn examples_load_and_decide() {
        let rule = load_rule(RULE, "x.toml").unwrap();
        let ex = &rule.meta.examples;
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].why, "another program");
        assert_eq!(alerts_on(&rule, &ex[0]), Some(true));
        assert_eq!(alerts_on(&rule, &ex[1]), Some(false));
    }

    #[test]
    fn bad_examples_name_the_example_and_its_line() {
        for (bad, want) in [
            (RULE.replace("\"quiet\"", "\"maybe\""), "example 2: expect is \"maybe\""),
            (RULE.replace("\"ls\"}}'", "\"ls\"'"), "example 2: event 1:"),
            (RULE.replace("events = ['{\"event\": {\"category\": [\"process\"]}, \"process\": {\"name\": \"ls\"}}']", "events = []"), "example 2: no events"),
        ] {
            let err = load_rule(&bad, "x.toml").unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            // The second `[[unithunt.example]]` header is on line 15 of RULE.
            assert!(err.starts_with("error: x.toml:15: "), "{err}");
        }
    }
}
