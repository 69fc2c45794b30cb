//! Tuning files: Elastic-style exception items that keep known-good activity quiet.
//!
//! ```toml
//! [[exception]]
//! name = "Ansible deploys units on the build hosts"
//! rule_id = ["5b0d2c3e-7a41-4f7e-9c1a-2e6f8d3b1a01"]   # absent: every rule
//! comment = "CHG-1234"
//!
//! [[exception.entries]]
//! field = "host.name"
//! type = "match_any"          # match | match_any | wildcard | exists
//! operator = "included"       # or "excluded" (the entry must NOT hold)
//! value = ["build-01", "build-02"]
//! ```
//!
//! As in Elastic Security, an item matches an event when all its entries do, and a rule stays quiet
//! on an event (for a sequence: on each event of a stage) that any of its items matches. `match`
//! and `match_any` compare exactly (keyword fields), `wildcard` is Elastic's `matches` operator
//! (`*` and `?`, case-sensitive), `exists` asks for any value. Each item is compiled to an EQL
//! condition and joined to the rule's predicates as `and not (...)`, which holds when the fields
//! are missing (Elasticsearch's `must_not`), so an exception never silences an event it does not
//! describe.

use crate::load::{RuleError, RulePack};
use serde::Deserialize;
use unithunt_engine::{Expr, QueryKind};
use unithunt_eql::{compile, EqlOptions};
use unithunt_sigma::to_eql::quote;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TuningFile {
    #[serde(default)]
    exception: Vec<toml::Spanned<ExceptionToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionToml {
    name: String,
    #[serde(default)]
    rule_id: Vec<String>,
    #[serde(default)]
    comment: String,
    entries: Vec<toml::Spanned<EntryToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    field: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "included")]
    operator: String,
    #[serde(default)]
    value: Option<toml::Value>,
}

fn included() -> String {
    "included".into()
}

/// One exception item, compiled.
#[derive(Clone, Debug)]
pub struct Exception {
    pub name: String,
    /// The rules it applies to; empty: every rule.
    pub rule_ids: Vec<String>,
    pub comment: String,
    /// The item as an EQL condition (what `rules show` and errors print).
    pub condition: String,
    expr: Expr,
    /// `file:line` of the item.
    pub origin: String,
}

/// The exception items of tuning files.
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    pub exceptions: Vec<Exception>,
}

/// A field name as EQL reads it: plain when it is a dotted name, else in backticks.
fn field(name: &str) -> Result<String, String> {
    if name.is_empty() || name.contains('`') {
        return Err(format!("field {name:?} is not a field name"));
    }
    let plain = name.split('.').all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
    });
    Ok(if plain {
        name.to_string()
    } else {
        format!("`{name}`")
    })
}

fn strings(v: &Option<toml::Value>, what: &str) -> Result<Vec<String>, String> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "{what}: {other} is not a string, number or boolean"
        )),
    };
    match v {
        None => Err(format!("{what} needs a value")),
        Some(toml::Value::Array(items)) if items.is_empty() => Err(format!("{what}: empty list")),
        Some(toml::Value::Array(items)) => items.iter().map(scalar).collect(),
        Some(v) => Ok(vec![scalar(v)?]),
    }
}

fn entry_condition(e: &EntryToml) -> Result<String, String> {
    let f = field(&e.field)?;
    let cond = match e.kind.as_str() {
        "match" => {
            let v = strings(&e.value, "match")?;
            if v.len() != 1 {
                return Err("match takes one value (match_any takes a list)".into());
            }
            format!("{f} == {}", quote(&v[0]))
        }
        "match_any" => {
            let v = strings(&e.value, "match_any")?;
            format!(
                "{f} in ({})",
                v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
            )
        }
        "wildcard" => {
            let v = strings(&e.value, "wildcard")?;
            format!(
                "{f} like ({})",
                v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
            )
        }
        "exists" => {
            if e.value.is_some() {
                return Err("exists takes no value".into());
            }
            format!("{f} != null")
        }
        "nested" | "list" => {
            return Err(format!(
                "type {:?} (value lists and nested entries) is not supported; use match_any",
                e.kind
            ))
        }
        other => {
            return Err(format!(
                "type {other:?}: expected match, match_any, wildcard or exists"
            ))
        }
    };
    match e.operator.as_str() {
        "included" => Ok(format!("({cond})")),
        "excluded" => Ok(format!("not ({cond})")),
        other => Err(format!("operator {other:?}: expected included or excluded")),
    }
}

/// Parses and checks a tuning file; errors name the file and the item's line.
pub fn load_tuning(text: &str, origin: &str) -> Result<Tuning, RuleError> {
    // Every error as `file:line: ...`, the line of what is wrong (the entry, not its exception).
    let line_at = |at: usize| text[..at.min(text.len())].lines().count().max(1);
    let line_of = |at: usize| {
        // A span starts at its table header: the line after the text before it.
        text[..at.min(text.len())].matches('\n').count() + 1
    };
    let file: TuningFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        RuleError {
            origin: format!("{origin}:{}", line_at(at)),
            message: e.message().to_string(),
            rendered: None,
        }
    })?;
    let mut out = Tuning::default();
    for (n, spanned) in file.exception.into_iter().enumerate() {
        let line = line_of(spanned.span().start);
        let fail_at = |line: usize, message: String| RuleError {
            origin: format!("{origin}:{line}"),
            message: format!("exception {}: {message}", n + 1),
            rendered: None,
        };
        let fail = |message: String| fail_at(line, message);
        let item = spanned.into_inner();
        if item.entries.is_empty() {
            return Err(fail("no entries: it would silence everything".into()));
        }
        let mut parts = Vec::new();
        for (i, e) in item.entries.iter().enumerate() {
            let entry_line = line_of(e.span().start);
            parts.push(
                entry_condition(e.get_ref())
                    .map_err(|m| fail_at(entry_line, format!("entry {}: {m}", i + 1)))?,
            );
        }
        let condition = parts.join(" and ");
        let query = compile(
            &format!("any where {condition}"),
            &EqlOptions::elasticsearch(),
        )
        .map_err(|e| fail(format!("{condition}: {}", e.message)))?;
        let QueryKind::Events(expr) = query.kind else {
            return Err(fail("not a condition".into()));
        };
        out.exceptions.push(Exception {
            name: item.name,
            rule_ids: item.rule_id,
            comment: item.comment,
            condition,
            expr,
            origin: format!("{origin}:{line}"),
        });
    }
    Ok(out)
}

impl RulePack {
    /// Joins each exception to the predicates of the rules it names (every rule when it names
    /// none): a stage predicate `p` becomes `p and not (exception)`. An exception naming a rule
    /// the pack does not hold is an error (a typo would otherwise silence nothing, silently).
    /// Returns how many (exception, rule) pairs were applied.
    pub fn apply_tuning(&mut self, tuning: &Tuning) -> Result<usize, RuleError> {
        let mut applied = 0;
        for exc in &tuning.exceptions {
            for id in &exc.rule_ids {
                if !self.rules.iter().any(|r| r.meta.rule_id == *id) {
                    return Err(RuleError {
                        origin: exc.origin.clone(),
                        message: format!(
                            "exception {:?} names rule_id {id:?}, which no loaded rule has",
                            exc.name
                        ),
                        rendered: None,
                    });
                }
            }
            for r in &mut self.rules {
                if !exc.rule_ids.is_empty() && !exc.rule_ids.contains(&r.meta.rule_id) {
                    continue;
                }
                if r.untuned.is_none() {
                    r.untuned = r.query.clone();
                }
                let Some(q) = &mut r.query else { continue };
                let guard = |e: &mut Expr| {
                    *e = Expr::And(vec![e.clone(), Expr::MustNot(Box::new(exc.expr.clone()))]);
                };
                match &mut q.kind {
                    QueryKind::Events(e) => guard(e),
                    QueryKind::Sequence(s) | QueryKind::Join(s) => {
                        s.stages.iter_mut().for_each(|st| guard(&mut st.filter))
                    }
                    QueryKind::Sample(s) => {
                        s.stages.iter_mut().for_each(|st| guard(&mut st.filter))
                    }
                }
                applied += 1;
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::set::RuleSet;
    use serde_json::json;

    const TUNING: &str = r#"
[[exception]]
name = "build hosts deploy units"
rule_id = ["9f1c5a7e-3b7d-4a52-9d1e-5e2c1f0a7b01"]

[[exception.entries]]
field = "host.name"
type = "match_any"
value = ["build-01", "build-02"]

[[exception.entries]]
field = "user.name"
type = "match"
operator = "excluded"
value = "root"
"#;

    fn seed_alerts(pack: RulePack, doc: &serde_json::Value) -> bool {
        let set = RuleSet::new(pack);
        let all: Vec<usize> = (0..set.stages().len()).collect();
        !set.evaluate(doc, &all).is_empty()
    }

    #[test]
    fn an_exception_silences_what_it_describes_and_nothing_else() {
        let tuning = load_tuning(TUNING, "t.toml").unwrap();
        assert_eq!(
            tuning.exceptions[0].condition,
            r#"(host.name in ("build-01", "build-02")) and not (user.name == "root")"#
        );
        let event = |host: Option<&str>, user: &str| {
            let mut e = json!({
                "event": {"category": ["file"], "type": ["creation"]},
                "file": {"path": "/etc/systemd/system/x.service", "extension": "service"},
                "process": {"name": "bash"},
                "user": {"name": user},
            });
            if let Some(h) = host {
                e["host"] = json!({"name": h});
            }
            e
        };
        let tuned = || {
            let mut p = RulePack::builtin();
            p.rules
                .retain(|r| r.meta.rule_id == "9f1c5a7e-3b7d-4a52-9d1e-5e2c1f0a7b01");
            assert_eq!(p.apply_tuning(&tuning).unwrap(), 1);
            p
        };
        assert!(!seed_alerts(tuned(), &event(Some("build-01"), "deploy")));
        // Root on a build host, another host, or no host at all: the exception does not hold.
        assert!(seed_alerts(tuned(), &event(Some("build-01"), "root")));
        assert!(seed_alerts(tuned(), &event(Some("web-01"), "deploy")));
        assert!(seed_alerts(tuned(), &event(None, "deploy")));
    }

    #[test]
    fn bad_tuning_is_refused_with_file_and_line() {
        for (text, want) in [
            (
                TUNING.replace("match_any", "regex"),
                "t.toml:6: exception 1: entry 1: type \"regex\"",
            ),
            (
                TUNING.replace("excluded", "maybe"),
                "entry 2: operator \"maybe\"",
            ),
            (
                TUNING.replace("field = \"host.name\"", "feld = \"host.name\""),
                "unknown field `feld`",
            ),
            (
                TUNING.replace("value = \"root\"", ""),
                "entry 2: match needs a value",
            ),
        ] {
            let err = load_tuning(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains("t.toml") && err.contains(want), "{err}");
        }
        let mut bad_id = load_tuning(TUNING, "t.toml").unwrap();
        bad_id.exceptions[0].rule_ids = vec!["no-such-rule".into()];
        let err = RulePack::builtin()
            .apply_tuning(&bad_id)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml:2") && err.contains("no-such-rule"),
            "{err}"
        );
    }
}
