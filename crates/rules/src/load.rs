//! Loading rule files.

use serde::Deserialize;
use std::fmt;
use std::path::Path;
use unithunt_engine::Query;
use unithunt_eql::{compile, EqlError, EqlOptions, Span};

/// What a rule says about itself: the fields alerts carry.
#[derive(Clone, Debug)]
pub struct RuleMeta {
    pub rule_id: String,
    pub name: String,
    pub description: String,
    pub rule_type: String,
    pub language: String,
    pub risk_score: u32,
    pub severity: String,
    pub index: Vec<String>,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub false_positives: Vec<String>,
    pub references: Vec<String>,
    /// `[[rule.threat]]` as JSON (framework, tactic, technique, subtechnique).
    pub threat: serde_json::Value,
    /// The file the rule came from (`rules/...` for the embedded pack).
    pub origin: String,
    /// A Sigma rule's `name` (what correlation rules may call it by).
    pub sigma_name: Option<String>,
    /// True-positive and true-negative example events (`[[unithunt.example]]`), run by
    /// `unithunt rules test`.
    pub examples: Vec<crate::examples::RuleExample>,
    /// Elastic's `building_block_type` (`"default"`): the rule's alerts are building blocks,
    /// kept out of the analyst's queue (the table, `watch`'s lines) and written with
    /// `kibana.alert.building_block_type`; other rules build on them.
    pub building_block_type: Option<String>,
}

/// A loaded rule. `query` is `None` when the rule's type or language is not one unithunt runs (it is
/// then listed, not silently dropped).
#[derive(Clone, Debug)]
pub struct Rule {
    pub meta: RuleMeta,
    pub query_text: String,
    pub query: Option<Query>,
    pub unsupported: Option<String>,
    /// A Sigma correlation rule: no query of its own; it runs on the matches of the rules it names.
    pub correlation: Option<unithunt_sigma::correlation::CorrelationSpec>,
    /// A Sigma detection: the field mapping its log source was compiled with (correlations on it
    /// name its fields the same way).
    pub sigma_scope: Option<unithunt_sigma::pipeline::Scope>,
    /// The query before tuning joined its exceptions (`None`: not tuned), to count what the
    /// tuning kept quiet.
    pub untuned: Option<Query>,
}

/// A rule file that could not be loaded, with where.
#[derive(Debug, Clone)]
pub struct RuleError {
    pub origin: String,
    pub message: String,
    /// The error rendered with line, column and caret, when a position is known.
    pub rendered: Option<String>,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rendered {
            Some(r) => f.write_str(r),
            None => write!(f, "error: {}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for RuleError {}

#[derive(Deserialize)]
struct RuleFile {
    rule: RuleToml,
    /// unithunt's own table, next to Elastic's `[metadata]` and `[rule]`.
    #[serde(default)]
    unithunt: UnithuntToml,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UnithuntToml {
    #[serde(default)]
    example: Vec<toml::Spanned<crate::examples::ExampleToml>>,
}

#[derive(Deserialize)]
struct RuleToml {
    rule_id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "type")]
    rule_type: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    query: Option<toml::Spanned<String>>,
    risk_score: u32,
    severity: String,
    #[serde(default)]
    index: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    building_block_type: Option<String>,
    #[serde(default)]
    false_positives: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    threat: Vec<toml::Value>,
    /// Elastic Security's look-back: each run searches events from `from` (e.g. `now-9m`) to now.
    #[serde(default)]
    from: Option<String>,
}

/// Kibana's default look-back for a rule (`from = "now-6m"`).
const DEFAULT_LOOKBACK_NS: i64 = 6 * 60 * 1_000_000_000;

/// Parses `now-9m`, `now-1h`, `now-30s`, `now-2d` into nanoseconds.
fn lookback_ns(from: &str) -> Option<i64> {
    let rest = from.trim().strip_prefix("now-")?;
    let (n, unit) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let per = match unit {
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(per)
}

fn rendered(origin: &str, text: &str, message: &str, span: Span) -> RuleError {
    RuleError {
        origin: origin.to_string(),
        message: message.to_string(),
        rendered: Some(EqlError::new(message, span).render(text, origin)),
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(toml_to_json).collect::<Vec<_>>().into(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Whether a rule's text (with no file name to go by) is Elastic TOML, which opens its tables
/// with `[metadata]` or `[rule]`, rather than Sigma YAML.
pub fn is_elastic_toml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|l| l == "[rule]" || l == "[metadata]")
}

/// Parses and compiles one rule file. `origin` names it in errors.
pub fn load_rule(text: &str, origin: &str) -> Result<Rule, RuleError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| {
        let span = e
            .span()
            .map(|r| Span::new(r.start, r.end))
            .unwrap_or_default();
        rendered(origin, text, e.message(), span)
    })?;
    let r = file.rule;
    if r.risk_score > 100 {
        return Err(RuleError {
            origin: origin.into(),
            message: format!("risk_score {} is above 100", r.risk_score),
            rendered: None,
        });
    }
    let meta = RuleMeta {
        rule_id: r.rule_id,
        name: r.name,
        description: r.description,
        rule_type: r.rule_type.clone(),
        language: r.language.clone().unwrap_or_default(),
        risk_score: r.risk_score,
        severity: r.severity,
        index: r.index,
        tags: r.tags,
        note: r.note,
        false_positives: r.false_positives,
        references: r.references,
        threat: serde_json::Value::Array(r.threat.iter().map(toml_to_json).collect()),
        origin: origin.to_string(),
        building_block_type: r.building_block_type,
        sigma_name: None,
        examples: crate::examples::parse(file.unithunt.example, text, origin)?,
    };
    let Some(query) = r.query else {
        return Ok(Rule {
            meta,
            query_text: String::new(),
            query: None,
            unsupported: Some("the rule has no query".into()),
            correlation: None,
            sigma_scope: None,
            untuned: None,
        });
    };
    let query_text = query.get_ref().clone();
    if r.rule_type != "eql" || r.language.as_deref() != Some("eql") {
        let why = format!(
            "rule type `{}` in language `{}` is not run by unithunt (EQL rules are)",
            r.rule_type,
            r.language.as_deref().unwrap_or("?")
        );
        return Ok(Rule {
            meta,
            query_text,
            query: None,
            unsupported: Some(why),
            correlation: None,
            sigma_scope: None,
            untuned: None,
        });
    }
    let lookback = r
        .from
        .as_deref()
        .and_then(lookback_ns)
        .unwrap_or(DEFAULT_LOOKBACK_NS);
    let mut compiled = compile(&query_text, &EqlOptions::elasticsearch()).map_err(|e| {
        // Point into the file: the query text sits inside the TOML string's span.
        let value = query.span();
        let offset = text
            .get(value.clone())
            .and_then(|raw| raw.find(query_text.as_str()))
            .map(|o| value.start + o)
            .unwrap_or(value.start);
        let span = Span::new(offset + e.span.start, offset + e.span.end);
        rendered(origin, text, &e.message, span)
    })?;
    // Elastic Security runs a sequence rule over its look-back window only, so events further
    // apart never form one of its sequences: without a `maxspan`, the window is the span. This is
    // also what keeps a long scan's pending sequences bounded.
    if let unithunt_engine::QueryKind::Sequence(spec) = &mut compiled.kind {
        if spec.maxspan.is_none() {
            spec.maxspan = Some(lookback);
        }
    }
    Ok(Rule {
        meta,
        query_text,
        query: Some(compiled),
        unsupported: None,
        correlation: None,
        sigma_scope: None,
        untuned: None,
    })
}

/// Elastic's risk score and severity for a Sigma `level`.
fn sigma_level(level: Option<&str>) -> (u32, String) {
    match level.unwrap_or("medium") {
        "informational" => (21, "low".into()),
        "low" => (21, "low".into()),
        "high" => (73, "high".into()),
        "critical" => (99, "critical".into()),
        _ => (47, "medium".into()),
    }
}

/// The ATT&CK techniques of Sigma tags (`attack.t1543.002`) as Elastic `threat` entries.
fn sigma_threat(tags: &[String]) -> serde_json::Value {
    let techniques: Vec<serde_json::Value> = tags
        .iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .map(|id| {
            let id = format!("T{}", id.to_ascii_uppercase());
            serde_json::json!({"framework": "MITRE ATT&CK", "technique": [{"id": id}]})
        })
        .collect();
    serde_json::Value::Array(techniques)
}

/// Loads a Sigma file (several documents possible) with the built-in pipeline. Correlation rules
/// load but are listed as not run; filters are returned for [`RulePack::add_path`] to apply.
pub fn load_sigma(
    text: &str,
    origin: &str,
    pipeline: &unithunt_sigma::Pipeline,
) -> Result<(Vec<Rule>, Vec<unithunt_sigma::load::Filter>), RuleError> {
    use unithunt_sigma::SigmaDoc;
    let err = |e: unithunt_sigma::SigmaError| RuleError {
        origin: origin.to_string(),
        message: e.message.clone(),
        rendered: Some(e.to_string()),
    };
    let docs = unithunt_sigma::load_documents(text, origin).map_err(err)?;
    let mut rules = Vec::new();
    let mut filters = Vec::new();
    for d in docs {
        match d {
            SigmaDoc::Rule(r) => {
                let (risk_score, severity) = sigma_level(r.level.as_deref());
                let meta = RuleMeta {
                    rule_id: r.id.clone().unwrap_or_else(|| r.title.clone()),
                    name: r.title.clone(),
                    description: r.description.clone(),
                    rule_type: "sigma".into(),
                    language: "sigma".into(),
                    risk_score,
                    severity,
                    index: Vec::new(),
                    tags: r.tags.clone(),
                    note: None,
                    false_positives: r.falsepositives.clone(),
                    references: r.references.clone(),
                    threat: sigma_threat(&r.tags),
                    origin: origin.to_string(),
                    building_block_type: None,
                    sigma_name: r.name.clone(),
                    examples: Vec::new(),
                };
                let expr = unithunt_sigma::compile(&r, pipeline).map_err(err)?;
                rules.push(Rule {
                    meta,
                    query_text: r.condition.clone(),
                    query: Some(Query::events(expr)),
                    unsupported: None,
                    correlation: None,
                    sigma_scope: Some(pipeline.scope_for(&r.logsource)),
                    untuned: None,
                });
            }
            SigmaDoc::Correlation(c) => {
                let (risk_score, severity) = sigma_level(c.level.as_deref());
                let spec =
                    unithunt_sigma::correlation::CorrelationSpec::from_doc(&c).map_err(|m| {
                        RuleError {
                            origin: origin.to_string(),
                            message: m.clone(),
                            rendered: Some(format!(
                                "error: {origin}: correlation `{}`: {m}",
                                c.title
                            )),
                        }
                    })?;
                rules.push(Rule {
                    meta: RuleMeta {
                        rule_id: c.id.clone().unwrap_or_else(|| c.title.clone()),
                        name: c.title.clone(),
                        description: String::new(),
                        rule_type: "sigma-correlation".into(),
                        language: "sigma".into(),
                        risk_score,
                        severity,
                        index: Vec::new(),
                        tags: Vec::new(),
                        note: None,
                        false_positives: Vec::new(),
                        references: Vec::new(),
                        threat: serde_json::Value::Array(Vec::new()),
                        origin: origin.to_string(),
                        building_block_type: None,
                        sigma_name: c.name.clone(),
                        examples: Vec::new(),
                    },
                    query_text: String::new(),
                    query: None,
                    unsupported: None,
                    correlation: Some(spec),
                    sigma_scope: None,
                    untuned: None,
                });
            }
            SigmaDoc::Filter(f) => filters.push(f),
        }
    }
    Ok((rules, filters))
}

/// An ordered collection of rules, unique by `rule_id`.
#[derive(Clone, Debug, Default)]
pub struct RulePack {
    pub rules: Vec<Rule>,
    /// The Sigma processing pipeline Sigma rules added from now on compile under (`--pipeline`);
    /// `None`: the built-in ECS one.
    pub sigma_pipeline: Option<std::sync::Arc<unithunt_sigma::Pipeline>>,
}

impl RulePack {
    /// The pack embedded in the binary (from `rules/`). Its rules are tested to load.
    pub fn builtin() -> RulePack {
        let mut pack = RulePack::default();
        for (path, text) in crate::BUILTIN_RULES {
            match load_rule(text, path) {
                Ok(rule) => pack.insert(rule),
                // The build's own tests keep this from happening; never panic in the field.
                Err(e) => eprintln!("{e}"),
            }
        }
        pack
    }

    /// Adds a rule, replacing one with the same `rule_id`.
    pub fn insert(&mut self, rule: Rule) {
        match self
            .rules
            .iter_mut()
            .find(|r| r.meta.rule_id == rule.meta.rule_id)
        {
            Some(slot) => *slot = rule,
            None => self.rules.push(rule),
        }
    }

    /// Applies a Sigma filter to the Sigma rules it names (by id or title) whose log source it
    /// covers: each becomes `(rule) and (filter)`, as pySigma applies filters.
    fn apply_filter(
        &mut self,
        f: &unithunt_sigma::load::Filter,
        pipeline: &unithunt_sigma::Pipeline,
    ) -> Result<(), RuleError> {
        let expr = unithunt_sigma::compile_filter(f, pipeline).map_err(|e| RuleError {
            origin: f.origin.clone(),
            message: e.message.clone(),
            rendered: Some(e.to_string()),
        })?;
        for r in &mut self.rules {
            if r.meta.language != "sigma"
                || !f
                    .rules
                    .iter()
                    .any(|n| *n == r.meta.rule_id || *n == r.meta.name)
            {
                continue;
            }
            if let Some(q) = &mut r.query {
                if let unithunt_engine::QueryKind::Events(e) = &mut q.kind {
                    *e = unithunt_engine::Expr::And(vec![e.clone(), expr.clone()]);
                }
            }
        }
        Ok(())
    }

    /// Loads a rule file, or every `*.toml` below a directory, adding or replacing rules. Returns
    /// the errors of files that did not load (the others are still added).
    pub fn add_path(&mut self, path: &Path) -> Vec<RuleError> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        if path.is_dir() {
            let mut stack = vec![path.to_path_buf()];
            while let Some(dir) = stack.pop() {
                match std::fs::read_dir(&dir) {
                    Ok(rd) => {
                        for e in rd.flatten() {
                            let p = e.path();
                            if p.is_dir() {
                                stack.push(p);
                            } else if p
                                .extension()
                                .is_some_and(|x| x == "toml" || x == "yml" || x == "yaml")
                            {
                                files.push(p);
                            }
                        }
                    }
                    Err(e) => errors.push(RuleError {
                        origin: dir.display().to_string(),
                        message: e.to_string(),
                        rendered: None,
                    }),
                }
            }
            files.sort();
        } else {
            files.push(path.to_path_buf());
        }
        let texts = files.into_iter().map(|f| {
            let origin = f.display().to_string();
            let sigma = f.extension().is_some_and(|x| x == "yml" || x == "yaml");
            (origin, sigma, std::fs::read_to_string(&f))
        });
        errors.extend(self.add_texts(texts));
        errors
    }

    /// Adds rules given as text, each `(origin, Sigma YAML rather than Elastic TOML, text)`;
    /// Sigma filters among them apply to the pack's Sigma rules once all are in. Returns the
    /// errors of the texts that did not load (the others are added).
    pub fn add_texts(
        &mut self,
        texts: impl IntoIterator<Item = (String, bool, std::io::Result<String>)>,
    ) -> Vec<RuleError> {
        let pipeline = match &self.sigma_pipeline {
            Some(p) => p.as_ref().clone(),
            None => unithunt_sigma::Pipeline::ecs_linux(),
        };
        let mut filters = Vec::new();
        let mut errors = Vec::new();
        for (origin, sigma, text) in texts {
            match text {
                Ok(text) if sigma => match load_sigma(&text, &origin, &pipeline) {
                    Ok((rules, fs)) => {
                        rules.into_iter().for_each(|r| self.insert(r));
                        filters.extend(fs);
                    }
                    Err(e) => errors.push(e),
                },
                Ok(text) => match load_rule(&text, &origin) {
                    Ok(rule) => self.insert(rule),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(RuleError {
                    origin,
                    message: e.to_string(),
                    rendered: None,
                }),
            }
        }
        for f in filters {
            if let Err(e) = self.apply_filter(&f, &pipeline) {
                errors.push(e);
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_all_load_and_compile() {
        assert!(!crate::BUILTIN_RULES.is_empty());
        for (path, text) in crate::BUILTIN_RULES {
            let rule = load_rule(text, path).unwrap_or_else(|e| panic!("{e}"));
            assert!(rule.query.is_some(), "{path}: {:?}", rule.unsupported);
        }
    }

    #[test]
    fn the_seed_rule_keeps_every_fact_of_the_seed_page() {
        let pack = RulePack::builtin();
        let seed = pack
            .rules
            .iter()
            .find(|r| r.meta.tags.iter().any(|t| t == "Reference"))
            .expect("seed rule");
        assert_eq!(seed.meta.severity, "high");
        assert_eq!(
            seed.meta.index,
            vec![
                "logs-endpoint.events.file-*",
                "logs-endpoint.events.process-*"
            ]
        );
        // The seed page's five, then unithunt's note on what the recorded package install shows.
        assert_eq!(seed.meta.false_positives.len(), 6);
        assert!(seed.meta.false_positives[0].starts_with("Package managers (apt, yum, dnf, rpm)"));
        assert!(seed.meta.false_positives[5].starts_with("unithunt's note"));
        assert!(seed.meta.tags.iter().any(|t| t == "Confidence: High"));
        let threat = seed.meta.threat.to_string();
        for id in ["T1543", "T1543.002", "TA0003", "TA0004"] {
            assert!(threat.contains(id), "{id} missing from {threat}");
        }
    }

    #[test]
    fn sequences_without_maxspan_get_the_rule_look_back() {
        let rule = |from: &str| {
            let q = "sequence [process where true] [file where true]";
            format!("[rule]\nrule_id = \"x\"\nname = \"n\"\ntype = \"eql\"\nlanguage = \"eql\"\nrisk_score = 1\nseverity = \"low\"\n{from}query = \"{q}\"\n")
        };
        let span = |text: &str| match load_rule(text, "r").unwrap().query.unwrap().kind {
            unithunt_engine::QueryKind::Sequence(s) => s.maxspan,
            _ => None,
        };
        assert_eq!(
            span(&rule("from = \"now-9m\"\n")),
            Some(9 * 60 * 1_000_000_000)
        );
        assert_eq!(span(&rule("")), Some(DEFAULT_LOOKBACK_NS));
        assert_eq!(lookback_ns("now-61m"), Some(61 * 60 * 1_000_000_000));
        assert_eq!(lookback_ns("later"), None);
    }

    #[test]
    fn query_errors_point_into_the_rule_file() {
        let text = "[rule]\nrule_id = \"x\"\nname = \"n\"\ntype = \"eql\"\nlanguage = \"eql\"\nrisk_score = 1\nseverity = \"low\"\nquery = '''\nprocess where\n  lenght(process.name) > 1\n'''\n";
        let e = load_rule(text, "rules/bad.toml").unwrap_err();
        let r = e.rendered.unwrap();
        assert!(r.contains("rules/bad.toml:10:3"), "{r}");
        assert!(r.contains("^^^^^^"), "{r}");
        let e = load_rule("[rule]\nrule_id = 1\n", "rules/worse.toml").unwrap_err();
        assert!(e.rendered.unwrap().contains("rules/worse.toml:2:"));
    }

    #[test]
    fn elastic_production_rules_load_as_they_are() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/peer/elastic-detection-rules/rules/linux");
        let mut pack = RulePack::default();
        let errors = pack.add_path(&dir);
        assert!(
            errors.is_empty(),
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let eql = pack.rules.iter().filter(|r| r.query.is_some()).count();
        assert!(eql > 100, "only {eql} EQL rules compiled");
        assert!(
            pack.rules
                .iter()
                .any(|r| !r.meta.rule_id.is_empty() && r.unsupported.is_some()),
            "non-EQL rules are listed as unsupported"
        );
    }
}
