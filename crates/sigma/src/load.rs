//! Reading Sigma documents: YAML (one or several documents per file) into rules, correlation
//! rules and filters, with schema errors that name the file, the line and the offending key.

use serde_json::{Map, Value as Json};
use std::fmt;

/// A Sigma document.
#[derive(Clone, Debug)]
pub enum SigmaDoc {
    Rule(SigmaRule),
    Correlation(Correlation),
    Filter(Filter),
}

/// `logsource`: what the rule's events are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
}

/// A detection rule.
#[derive(Clone, Debug)]
pub struct SigmaRule {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub description: String,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub level: Option<String>,
    pub logsource: LogSource,
    /// The search identifiers (every `detection` key but `condition`, `timeframe`), in file order.
    pub searches: Vec<(String, Json)>,
    /// The condition (several conditions in a list are alternatives: joined with `or`).
    pub condition: String,
    /// The file the rule came from, and the document's text (for line numbers in errors).
    pub origin: String,
    text: String,
}

/// A correlation rule, as written (see [`crate::correlation`] for running it).
#[derive(Clone, Debug)]
pub struct Correlation {
    pub title: String,
    pub id: Option<String>,
    /// What other correlations call it by (chaining).
    pub name: Option<String>,
    pub kind: String,
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan: Option<String>,
    /// `condition` (bounds and `field`) and `aliases`, as written.
    pub condition: Option<Json>,
    pub aliases: Option<Json>,
    pub generate: bool,
    pub level: Option<String>,
    pub origin: String,
}

/// A filter (meta filter): a detection added as `and not` to the rules it names.
#[derive(Clone, Debug)]
pub struct Filter {
    pub title: String,
    pub id: Option<String>,
    pub rules: Vec<String>,
    pub logsource: LogSource,
    pub searches: Vec<(String, Json)>,
    pub condition: String,
    pub origin: String,
}

/// A document that could not be loaded or compiled: where, and why.
#[derive(Clone, Debug, Default)]
pub struct SigmaError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    /// The 1-based column of the key on `line`, and the line's text (shown with a caret under the
    /// key). Boxed: errors travel in `Result`s and stay small.
    pub snippet: Option<Box<(usize, String)>>,
}

impl SigmaError {
    /// The 1-based column of the offending key, when known.
    pub fn column(&self) -> Option<usize> {
        self.snippet.as_ref().map(|s| s.0)
    }
}

impl fmt::Display for SigmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column() {
                write!(f, ":{c}")?;
            }
        }
        if let Some(k) = &self.key {
            write!(f, ": `{k}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(l), Some((c, text))) = (self.line, self.snippet.as_deref()) {
            let c = *c;
            let width = l.to_string().len();
            let marks = self.key.as_deref().map_or(1, |k| k.chars().count().max(1));
            // The caret sits under a key near the line's start; a generated condition can make the
            // line megabytes long, so the echo stops after a screenful.
            let mut shown: String = text.chars().take((c + marks).max(120)).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            write!(
                f,
                "\n{:w$} |\n{l} | {shown}\n{:w$} | {}{}",
                "",
                "",
                " ".repeat(c - 1),
                "^".repeat(marks),
                w = width
            )?;
        }
        Ok(())
    }
}

/// Where `key` is written as a mapping key in `text`, at or after 1-based line `from`: (line,
/// column, the line's text).
fn locate(text: &str, key: &str, from: usize) -> Option<(usize, usize, String)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, l)| {
            let indent = l.len() - l.trim_start().len();
            let t = &l[indent..];
            let (t, dash) = match t.strip_prefix("- ") {
                Some(r) => (r, 2),
                None => (t, 0),
            };
            let quoted = ['\'', '"'].iter().find_map(|q| {
                t.strip_prefix(*q)
                    .and_then(|r| r.strip_prefix(key))
                    .and_then(|r| r.strip_prefix(*q))
                    .map(|r| (r, 1))
            });
            let (rest, skip) = quoted.or_else(|| t.strip_prefix(key).map(|r| (r, 0)))?;
            rest.trim_start()
                .starts_with(':')
                .then(|| (i + 1, indent + dash + skip + 1, l.to_string()))
        })
}

/// An error at `key` in `text` (searched from line `from`).
fn at_key(origin: &str, text: &str, key: &str, from: usize, message: String) -> SigmaError {
    let found = locate(text, key, from);
    SigmaError {
        origin: origin.to_string(),
        line: found.as_ref().map(|f| f.0),
        key: Some(key.to_string()),
        message,
        snippet: found.map(|f| Box::new((f.1, f.2))),
    }
}

impl std::error::Error for SigmaError {}

/// The line (1-based) where each mapping key is first written in `text`, as [`locate`] reads a
/// line: indentation, an optional `- `, the key (bare, or quoted), then `:`. Bare keys holding a
/// `:` are not found here; callers fall back to [`line_of`].
fn key_lines(text: &str) -> std::collections::HashMap<&str, usize> {
    let mut out = std::collections::HashMap::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        let t = t.strip_prefix("- ").unwrap_or(t);
        let key = ['\'', '"']
            .iter()
            .find_map(|q| {
                let rest = t.strip_prefix(*q)?;
                let end = rest.find(*q)?;
                rest[end + 1..]
                    .trim_start()
                    .starts_with(':')
                    .then(|| &rest[..end])
            })
            .or_else(|| t.split_once(':').map(|(k, _)| k.trim_end()));
        if let Some(k) = key {
            out.entry(k).or_insert(i + 1);
        }
    }
    out
}

/// The line (1-based) where `key` is first written as a mapping key in `text`, if found.
fn line_of(text: &str, key: &str) -> Option<usize> {
    locate(text, key, 1).map(|f| f.0)
}

impl SigmaRule {
    /// A filter's detection seen as a rule (to compile it the same way).
    pub fn from_filter(f: &Filter) -> SigmaRule {
        SigmaRule {
            title: f.title.clone(),
            id: f.id.clone(),
            name: None,
            status: None,
            description: String::new(),
            references: Vec::new(),
            tags: Vec::new(),
            falsepositives: Vec::new(),
            level: None,
            logsource: f.logsource.clone(),
            searches: f.searches.clone(),
            condition: f.condition.clone(),
            origin: f.origin.clone(),
            text: String::new(),
        }
    }

    /// An error about this rule, at the line of `key` (a search identifier, `condition`, ...).
    /// When the message names a key inside it (`` `Image|endswitch`: unknown modifier ``), the
    /// error points at that key, the first one written after `key`.
    pub fn error(&self, message: impl Into<String>, key: &str) -> SigmaError {
        let message = message.into();
        let from = line_of(&self.text, key).unwrap_or(1);
        if let Some(inner) = message
            .strip_prefix('`')
            .and_then(|m| m.split_once("`: "))
            .map(|(k, rest)| (k.to_string(), rest.to_string()))
        {
            if locate(&self.text, &inner.0, from).is_some() {
                return at_key(&self.origin, &self.text, &inner.0, from, inner.1);
            }
        }
        at_key(&self.origin, &self.text, key, 1, message)
    }
}

/// Limits on what one file may make the parser do: Sigma rules are a few KiB; a file that asks for
/// more (an alias bomb, a huge document) is refused.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // YAML 1.2's core schema: `yes`, `no`, `on`, `off`, `y`, `n` are text (a rule matching
    // `Enabled: yes` means the word), and numbers written with leading zeros or underscores
    // (`0755`, `1_000`) keep their spelling.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options
}

/// Largest rule file read (bytes).
pub const MAX_FILE: usize = 4 << 20;

/// Loads every document of a Sigma file. Documents that are not rules, correlations or filters
/// (e.g. an empty one) are ignored; the first bad document stops the file with its error.
pub fn load_documents(text: &str, origin: &str) -> Result<Vec<SigmaDoc>, SigmaError> {
    let err = |line: Option<usize>, key: Option<&str>, message: String| SigmaError {
        origin: origin.to_string(),
        line,
        key: key.map(str::to_string),
        message,
        ..SigmaError::default()
    };
    if text.len() > MAX_FILE {
        return Err(err(
            None,
            None,
            format!("file larger than {MAX_FILE} bytes"),
        ));
    }
    let docs: Vec<Json> =
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(|e| {
            // The place as `file:line:col` with our own caret, and the parser's words without
            // its snippet (which would repeat the place).
            let bare = e.without_snippet().to_string();
            let bare = bare
                .strip_prefix("error: ")
                .unwrap_or(&bare)
                .split(" at line ")
                .next()
                .unwrap_or(&bare)
                .to_string();
            let bare = bare
                .split_once(": ")
                .filter(|(head, _)| head.starts_with("line ") && head.contains(" column "))
                .map_or(bare.clone(), |(_, rest)| rest.to_string());
            match e.location().filter(|l| l.line() > 0) {
                Some(l) => {
                    let line = l.line() as usize;
                    let text_line = text.lines().nth(line - 1).unwrap_or("").to_string();
                    SigmaError {
                        origin: origin.to_string(),
                        line: Some(line),
                        key: None,
                        message: format!("YAML: {bare}"),
                        snippet: Some(Box::new(((l.column() as usize).max(1), text_line))),
                    }
                }
                None => err(None, None, format!("YAML: {e}")),
            }
        })?;
    // Each document's own text, for line numbers (documents are separated by `---` lines).
    let texts = split_documents(text);
    let mut out = Vec::new();
    let mut global: Option<Map<String, Json>> = None;
    for (i, doc) in docs.into_iter().enumerate() {
        let doc_text = texts.get(i).map(String::as_str).unwrap_or(text);
        let Json::Object(mut map) = doc else {
            if doc.is_null() {
                continue;
            }
            return Err(err(None, None, "a Sigma document must be a mapping".into()));
        };
        // Rule collections (Sigma 1.x): `action: global` documents merge into the following ones.
        match map.get("action").and_then(Json::as_str) {
            Some("global") => {
                map.remove("action");
                global = Some(map);
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => {
                map.remove("action");
            }
            _ => {}
        }
        if let Some(g) = &global {
            let mut merged = g.clone();
            merge(&mut merged, map);
            map = merged;
        }
        out.push(document(map, doc_text, origin)?);
    }
    Ok(out)
}

fn merge(base: &mut Map<String, Json>, over: Map<String, Json>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Json::Object(b)), Json::Object(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Each document's text, preceded by as many empty lines as come before it in the file, so that
/// line numbers found in it are the file's.
fn split_documents(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" {
            let next = "\n".repeat(i + 1);
            match out.last_mut() {
                Some(d) if d.trim().is_empty() => *d = next,
                _ => out.push(next),
            }
            continue;
        }
        let last = out.last_mut().expect("one at least");
        last.push_str(line);
        last.push('\n');
    }
    out
}

fn str_list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a.iter().map(scalar_text).collect(),
        Some(Json::Null) | None => Vec::new(),
        Some(other) => vec![scalar_text(other)],
    }
}

/// A scalar as text (numbers and booleans as written by YAML).
pub fn scalar_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn logsource(map: &Map<String, Json>) -> LogSource {
    let get = |k: &str| {
        map.get("logsource")
            .and_then(|l| l.get(k))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    LogSource {
        category: get("category"),
        product: get("product"),
        service: get("service"),
    }
}

/// The search identifiers and condition of a `detection` mapping.
fn detection(
    det: &Json,
    text: &str,
    origin: &str,
    at: &str,
) -> Result<(Vec<(String, Json)>, String), SigmaError> {
    let err = |key: &str, message: String| at_key(origin, text, key, 1, message);
    let Json::Object(det) = det else {
        return Err(err(at, format!("`{at}` must be a mapping")));
    };
    let condition = match det.get("condition") {
        Some(Json::String(c)) => c.clone(),
        Some(Json::Array(cs)) if !cs.is_empty() && cs.iter().all(Json::is_string) => cs
            .iter()
            .map(|c| format!("({})", c.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" or "),
        Some(_) => return Err(err("condition", "the condition must be a string".into())),
        None => return Err(err(at, format!("`{at}` has no `condition`"))),
    };
    // In file order: `1 of them` and error messages read better, and the order is the author's.
    let mut searches: Vec<(String, Json)> = det
        .iter()
        // A filter's `rules` names the rules it applies to; not a search.
        .filter(|(k, _)| {
            !(matches!(k.as_str(), "condition" | "timeframe")
                || (at == "filter" && k.as_str() == "rules"))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // One pass over the text for every key's line: a lookup per key would make a rule with
    // thousands of selections quadratic in its size.
    let lines = key_lines(text);
    searches.sort_by_cached_key(|(k, _)| {
        lines
            .get(k.as_str())
            .copied()
            .or_else(|| line_of(text, k))
            .unwrap_or(usize::MAX)
    });
    for (k, v) in &searches {
        match v {
            Json::Object(_) | Json::Array(_) | Json::String(_) | Json::Number(_) | Json::Null => {}
            Json::Bool(_) => {
                return Err(err(k, format!("search identifier `{k}` is a boolean")));
            }
        }
    }
    Ok((searches, condition))
}

fn document(map: Map<String, Json>, text: &str, origin: &str) -> Result<SigmaDoc, SigmaError> {
    let err = |key: &str, message: String| at_key(origin, text, key, 1, message);
    let title = match map.get("title") {
        Some(Json::String(t)) if !t.trim().is_empty() => t.clone(),
        Some(_) => return Err(err("title", "the title must be a non-empty string".into())),
        None => return Err(err("title", "a Sigma document needs a `title`".into())),
    };
    let id = match map.get("id") {
        Some(Json::String(s)) => Some(s.clone()),
        None | Some(Json::Null) => None,
        Some(v @ Json::Number(_)) => Some(scalar_text(v)),
        Some(_) => return Err(err("id", "`id` must be a string (a UUID)".into())),
    };
    if let Some(corr) = map.get("correlation") {
        let Json::Object(c) = corr else {
            return Err(err("correlation", "`correlation` must be a mapping".into()));
        };
        let kind = c
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| err("type", "a correlation needs a `type`".into()))?;
        const KINDS: [&str; 7] = [
            "event_count",
            "value_count",
            "temporal",
            "temporal_ordered",
            "value_sum",
            "value_avg",
            "value_percentile",
        ];
        if !KINDS.contains(&kind) {
            return Err(err("type", format!("unknown correlation type `{kind}`")));
        }
        let rules = str_list(c.get("rules"));
        if rules.is_empty() {
            return Err(err(
                "rules",
                "a correlation names the `rules` it correlates".into(),
            ));
        }
        let (condition, aliases, generate) = crate::correlation::raw_parts(c);
        return Ok(SigmaDoc::Correlation(Correlation {
            title,
            id,
            name: map.get("name").and_then(Json::as_str).map(str::to_string),
            kind: kind.to_string(),
            rules,
            group_by: str_list(c.get("group-by")),
            timespan: c.get("timespan").map(scalar_text),
            condition,
            aliases,
            generate,
            level: map.get("level").and_then(Json::as_str).map(str::to_string),
            origin: origin.to_string(),
        }));
    }
    if let Some(filter) = map.get("filter") {
        let rules = str_list(filter.get("rules"));
        let (searches, condition) = detection(filter, text, origin, "filter")?;
        return Ok(SigmaDoc::Filter(Filter {
            title,
            id,
            rules,
            logsource: logsource(&map),
            searches,
            condition,
            origin: origin.to_string(),
        }));
    }
    match map.get("logsource") {
        Some(Json::Object(_)) => {}
        Some(_) => return Err(err("logsource", "`logsource` must be a mapping".into())),
        None => return Err(err("logsource", "a rule needs a `logsource`".into())),
    }
    let det = map
        .get("detection")
        .ok_or_else(|| err("detection", "a rule needs a `detection`".into()))?;
    let (searches, condition) = detection(det, text, origin, "detection")?;
    Ok(SigmaDoc::Rule(SigmaRule {
        title,
        id,
        name: map.get("name").and_then(Json::as_str).map(str::to_string),
        status: map.get("status").and_then(Json::as_str).map(str::to_string),
        description: map.get("description").map(scalar_text).unwrap_or_default(),
        references: str_list(map.get("references")),
        tags: str_list(map.get("tags")),
        falsepositives: str_list(map.get("falsepositives")),
        level: map.get("level").and_then(Json::as_str).map(str::to_string),
        logsource: logsource(&map),
        searches,
        condition,
        origin: origin.to_string(),
        text: text.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_loads_with_its_searches_in_file_order() {
        let docs = load_documents(
            "title: T\nid: 1\nlogsource:\n  product: linux\ndetection:\n  zsel:\n    a: 1\n  asel:\n    b: 2\n  condition: zsel and asel\nlevel: high\n",
            "t.yml",
        )
        .unwrap();
        let SigmaDoc::Rule(r) = &docs[0] else {
            panic!()
        };
        let names: Vec<&str> = r.searches.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["zsel", "asel"]);
        assert_eq!(r.level.as_deref(), Some("high"));
    }

    #[test]
    fn schema_errors_name_the_line_and_key() {
        let e = load_documents(
            "title: T\nlogsource:\n  product: linux\ndetection:\n  sel:\n    a: 1\n",
            "bad.yml",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("detection")));
        assert!(
            e.to_string().starts_with("error: bad.yml:4:1: `detection`"),
            "{e}"
        );
        let e = load_documents("title: [x]\n", "bad.yml").unwrap_err();
        assert_eq!(e.line, Some(1));
        // In a later document, lines are the file's; the caret sits under the key.
        let e = load_documents(
            "title: a\nlogsource: {product: x}\ndetection: {s: {a: 1}, condition: s}\n---\ntitle: b\nlogsource:\n  product: x\ndetection:\n  s:\n    f|nosuch: 1\n  condition: s\n",
            "two.yml",
        )
        .and_then(|docs| match &docs[1] {
            SigmaDoc::Rule(r) => crate::compile(r, &crate::Pipeline::ecs_linux()),
            _ => panic!(),
        })
        .unwrap_err();
        assert_eq!((e.line, e.column()), (Some(10), Some(5)), "{e}");
        assert!(
            e.to_string()
                .ends_with("10 |     f|nosuch: 1\n   |     ^^^^^^^^"),
            "{e}"
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            y.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(load_documents(&y, "bomb.yml").is_err());
    }

    #[test]
    fn collections_merge_the_global_document() {
        let docs = load_documents(
            "action: global\ntitle: T\nlogsource:\n  product: linux\n---\ndetection:\n  s: {a: 1}\n  condition: s\n---\ndetection:\n  s: {b: 1}\n  condition: s\n",
            "c.yml",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
    }
}
