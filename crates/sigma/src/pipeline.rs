//! Field mapping pipelines, in the spirit of pySigma's processing pipelines, as data files: which
//! event field a Sigma field name means for a given `logsource`, which events a log source covers
//! (a guard such as `event.category: process`), and log sources whose rules are evaluated per raw
//! record (`service: auditd`: each audit record under `auditd.records` on its own, the way
//! SigmaHQ's auditd rules are written).
//!
//! Format (YAML):
//! ```yaml
//! name: ...
//! keyword_fields: [message, process.command_line]   # where field-less keywords are searched
//! logsources:
//!   - match: {product: linux, category: process_creation}   # every given key must be equal
//!     guard: {event.category: process, event.type: start}   # exact, case-sensitive
//!     fields: {Image: process.executable}
//!   - match: {service: auditd}
//!     per_record: auditd.records
//! fields: {User: user.name}      # for every log source, after its own
//! placeholders: {Admins: [root, 'adm_*']}   # values of `%Admins%` under `|expand`
//! ```
//! Field names no mapping names are used as they are (ECS names work directly).

use crate::load::LogSource;
use serde_json::Value as Json;
use std::collections::HashMap;
use unithunt_engine::{CmpOp, Expr, Fold, Func};
use unithunt_event::{FieldPath, Value};

#[derive(Clone, Debug, Default)]
struct SourceRule {
    category: Option<String>,
    product: Option<String>,
    service: Option<String>,
    guard: Vec<(String, String)>,
    fields: HashMap<String, String>,
    per_record: Option<String>,
}

/// A pipeline in unithunt's own format.
#[derive(Clone, Debug, Default)]
struct Native {
    keyword_fields: Vec<String>,
    /// `expand` placeholders: name (without `%`) → values.
    placeholders: HashMap<String, Vec<String>>,
    sources: Vec<SourceRule>,
    fields: HashMap<String, String>,
}

/// A field mapping pipeline: unithunt's format or pySigma's (`crate::pysigma`), or several of
/// them chained (`Pipeline::chain`), applied in order.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub name: String,
    /// pySigma's `priority`: chained pipelines run lowest first.
    pub priority: i64,
    /// What the pipeline holds that only shapes a backend's query text (pySigma's
    /// `postprocessing`, `finalizers`): accepted, and said, since unithunt evaluates rules itself.
    pub notes: Vec<String>,
    steps: Vec<Step>,
}

#[derive(Clone, Debug)]
enum Step {
    Native(Native),
    Item(crate::pysigma::Item),
}

/// The pipeline shipped with unithunt: Sigma's Linux taxonomy onto the ECS the readers produce.
pub const ECS_LINUX: &str = include_str!("../../../pipelines/ecs-linux.yml");

impl Pipeline {
    /// The built-in ECS pipeline.
    pub fn ecs_linux() -> Pipeline {
        Pipeline::parse(ECS_LINUX).expect("the built-in pipeline is tested to load")
    }

    /// Reads a pipeline: pySigma's processing pipeline format when it has pySigma's keys
    /// (`transformations`, `vars`, `priority`, ...), unithunt's format otherwise.
    pub fn parse(text: &str) -> Result<Pipeline, String> {
        // pySigma maps keywords with a null key (`~: message`); JSON maps have string keys, so a
        // null key in block style is read as the string `~` (what `crate::pysigma` looks for).
        let null_key = regex::Regex::new(r"(?m)^(\s*(?:-\s+)?)(?:~|null|Null|NULL)(\s*):")
            .expect("a valid pattern");
        let text = null_key.replace_all(text, "${1}\"~\"${2}:");
        let doc: Json = serde_saphyr::from_str(&text).map_err(|e| format!("YAML: {e}"))?;
        if crate::pysigma::is_pysigma(&doc) {
            let (name, priority, notes, items) = crate::pysigma::parse(&doc)?;
            return Ok(Pipeline {
                name,
                priority,
                notes,
                steps: items.into_iter().map(Step::Item).collect(),
            });
        }
        let (name, native) = parse_native(&doc)?;
        Ok(Pipeline {
            name,
            priority: 0,
            notes: Vec::new(),
            steps: vec![Step::Native(native)],
        })
    }

    /// The pipelines `--pipeline` names, chained: each a file (unithunt's or pySigma's format)
    /// or `ecs-linux`, the built-in one. Errors name the file.
    pub fn from_specs(specs: &[String]) -> Result<Pipeline, String> {
        use std::io::Read;
        /// A pipeline file is at most this large (pySigma's largest community pipelines are
        /// tens of kB).
        const MAX_BYTES: u64 = 16 << 20;
        let mut all = Vec::new();
        for spec in specs {
            if spec == "ecs-linux" {
                all.push(Pipeline::ecs_linux());
                continue;
            }
            let mut text = String::new();
            std::fs::File::open(spec)
                .and_then(|f| f.take(MAX_BYTES + 1).read_to_string(&mut text))
                .map_err(|e| format!("pipeline {spec}: {e}"))?;
            if text.len() as u64 > MAX_BYTES {
                return Err(format!(
                    "pipeline {spec}: larger than {} MiB",
                    MAX_BYTES >> 20
                ));
            }
            all.push(Pipeline::parse(&text).map_err(|e| format!("pipeline {spec}: {e}"))?);
        }
        Ok(Pipeline::chain(all))
    }

    /// Several pipelines as one, lowest `priority` first (equal priorities in the order given),
    /// as pySigma's resolver chains them.
    pub fn chain(mut pipelines: Vec<Pipeline>) -> Pipeline {
        pipelines.sort_by_key(|p| p.priority);
        let name = pipelines
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let mut out = Pipeline {
            name,
            ..Pipeline::default()
        };
        for p in pipelines {
            out.notes.extend(p.notes);
            out.steps.extend(p.steps);
        }
        out
    }

    /// What applies to rules of `source`: each step in order (of a unithunt-format pipeline, the
    /// first log source entry that matches; of a pySigma one, each item whose conditions hold).
    pub fn scope_for(&self, source: &LogSource) -> Scope {
        let mut scope = Scope {
            ops: Vec::new(),
            guard: Vec::new(),
            per_record: None,
            keyword_fields: Vec::new(),
            placeholders: HashMap::new(),
            wildcards: Vec::new(),
            conditions: Vec::new(),
            failure: None,
        };
        for step in &self.steps {
            match step {
                Step::Native(n) => n.apply(source, &mut scope),
                Step::Item(item) => item.apply(source, &mut scope),
            }
        }
        scope
    }
}

/// Whether a log source entry's `want` (absent: any) holds for the rule's `have`.
pub(crate) fn logsource_field_matches(want: &Option<String>, have: &Option<String>) -> bool {
    want.as_ref()
        .is_none_or(|w| have.as_deref() == Some(w.as_str()))
}

impl Native {
    fn apply(&self, source: &LogSource, scope: &mut Scope) {
        let entry = self.sources.iter().find(|s| {
            logsource_field_matches(&s.category, &source.category)
                && logsource_field_matches(&s.product, &source.product)
                && logsource_field_matches(&s.service, &source.service)
        });
        let mut fields = self.fields.clone();
        if let Some(e) = entry {
            fields.extend(e.fields.clone());
        }
        scope.ops.push(FieldOp::Map(
            "".into(),
            fields.into_iter().map(|(k, v)| (k, vec![v])).collect(),
        ));
        if let Some(e) = entry {
            scope.guard.extend(e.guard.iter().cloned());
            if e.per_record.is_some() {
                scope.per_record = e.per_record.clone();
            }
        }
        scope
            .keyword_fields
            .extend(self.keyword_fields.iter().cloned());
        scope.placeholders.extend(self.placeholders.clone());
    }
}

fn parse_native(doc: &Json) -> Result<(String, Native), String> {
    let map_of = |v: Option<&Json>, what: &str| -> Result<HashMap<String, String>, String> {
        match v {
            None | Some(Json::Null) => Ok(HashMap::new()),
            Some(Json::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Json::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!("{what}: `{k}` must map to a field name")),
                })
                .collect(),
            Some(_) => Err(format!("{what} must be a mapping")),
        }
    };
    let name = doc
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or("pipeline")
        .to_string();
    let mut p = Native {
        keyword_fields: doc
            .get("keyword_fields")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        sources: Vec::new(),
        fields: map_of(doc.get("fields"), "fields")?,
        placeholders: HashMap::new(),
    };
    if let Some(Json::Object(ph)) = doc.get("placeholders") {
        for (name, values) in ph {
            let list: Vec<String> = match values {
                Json::Array(a) => a.iter().map(crate::load::scalar_text).collect(),
                v => vec![crate::load::scalar_text(v)],
            };
            p.placeholders
                .insert(name.trim_matches('%').to_string(), list);
        }
    }
    for s in doc
        .get("logsources")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let m = s.get("match").ok_or("a log source needs `match`")?;
        let get = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_string);
        let mut guard: Vec<(String, String)> =
            map_of(s.get("guard"), "guard")?.into_iter().collect();
        guard.sort();
        p.sources.push(SourceRule {
            category: get("category"),
            product: get("product"),
            service: get("service"),
            guard,
            fields: map_of(s.get("fields"), "fields")?,
            per_record: s
                .get("per_record")
                .and_then(Json::as_str)
                .map(str::to_string),
        });
    }
    Ok((name, p))
}

/// One change to field names, in pipeline order. Each carries the id of the item that made it
/// (pySigma's `processing_item_applied` field condition asks for it).
#[derive(Clone, Debug)]
pub(crate) enum FieldOp {
    /// Names to one or several names (several: the item matches on any of them).
    Map(String, HashMap<String, Vec<String>>),
    /// The first matching prefix replaced.
    PrefixMap(String, Vec<(String, Vec<String>)>),
    /// A prefix or suffix added to the names the filter selects.
    Affix {
        id: String,
        prefix: bool,
        text: String,
        filter: crate::pysigma::FieldFilter,
    },
}

/// The mapping in force for one rule.
#[derive(Clone, Debug)]
pub struct Scope {
    pub(crate) ops: Vec<FieldOp>,
    guard: Vec<(String, String)>,
    per_record: Option<String>,
    pub(crate) keyword_fields: Vec<String>,
    pub(crate) placeholders: HashMap<String, Vec<String>>,
    /// pySigma `wildcard_placeholders`: placeholders (those the filter selects) left without
    /// values stand for `*`.
    pub(crate) wildcards: Vec<crate::pysigma::NameFilter>,
    /// pySigma `add_condition`: selections added to the rule (negated or not), each with the
    /// number of field operations before it (only later ones rename its fields).
    pub(crate) conditions: Vec<(Json, bool, usize)>,
    /// pySigma `rule_failure`: rules of this log source are refused with this message.
    pub(crate) failure: Option<String>,
}

/// What a Sigma field name reads.
#[derive(Clone, Debug)]
pub enum Subject {
    /// An event field (multi-valued fields match when any value does).
    Field(FieldPath),
    /// A key of the raw record being evaluated (per-record log sources).
    Record(String),
}

impl Scope {
    /// The event fields Sigma field name `name` reads under this mapping (itself when unmapped;
    /// several when a pySigma mapping names a list: the item then matches on any of them).
    pub fn field_names(&self, name: &str) -> Vec<String> {
        let mut names: Vec<(String, Vec<&str>)> = vec![(name.to_string(), Vec::new())];
        for op in &self.ops {
            let mut next = Vec::with_capacity(names.len());
            for (n, applied) in names {
                let (targets, id): (Vec<String>, &str) = match op {
                    FieldOp::Map(id, m) => match m.get(&n) {
                        Some(t) => (t.clone(), id),
                        None => (vec![n], ""),
                    },
                    FieldOp::PrefixMap(id, list) => {
                        match list.iter().find(|(p, _)| n.starts_with(p.as_str())) {
                            Some((p, to)) => (
                                to.iter().map(|t| format!("{t}{}", &n[p.len()..])).collect(),
                                id,
                            ),
                            None => (vec![n], ""),
                        }
                    }
                    FieldOp::Affix {
                        id,
                        prefix,
                        text,
                        filter,
                    } => {
                        if filter.selects(&n, &applied) {
                            let t = if *prefix {
                                format!("{text}{n}")
                            } else {
                                format!("{n}{text}")
                            };
                            (vec![t], id)
                        } else {
                            (vec![n], "")
                        }
                    }
                };
                for t in targets {
                    let mut a = applied.clone();
                    if !id.is_empty() {
                        a.push(id);
                    }
                    next.push((t, a));
                }
            }
            names = next;
        }
        names.into_iter().map(|(n, _)| n).collect()
    }

    /// The event field Sigma field name `name` reads, for what names fields outside a detection
    /// (a correlation's `group-by` and `field`): the first when a mapping names several.
    pub fn field_name(&self, name: &str) -> String {
        self.field_names(name)
            .into_iter()
            .next()
            .unwrap_or_else(|| name.to_string())
    }

    /// The values of `expand` placeholder `name`.
    pub fn placeholder(&self, name: &str) -> Option<Vec<String>> {
        if let Some(v) = self.placeholders.get(name) {
            return Some(v.clone());
        }
        self.wildcards
            .iter()
            .any(|f| f.selects(name))
            .then(|| vec!["*".to_string()])
    }

    pub fn subject(&self, name: &str) -> Subject {
        if self.per_record.is_some() {
            return Subject::Record(name.to_string());
        }
        Subject::Field(FieldPath::parse(&self.field_name(name)))
    }

    /// Every subject `name` reads (one, unless a mapping names several fields).
    pub fn subjects(&self, name: &str) -> Vec<Subject> {
        if self.per_record.is_some() {
            return vec![Subject::Record(name.to_string())];
        }
        self.field_names(name)
            .iter()
            .map(|f| Subject::Field(FieldPath::parse(f)))
            .collect()
    }

    /// Why rules of this log source are refused (pySigma `rule_failure`).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Selections the pipeline adds to every rule it applies to, each negated or not, with the
    /// scope its field names go through (the transformations after it, as pySigma runs them).
    pub fn added_conditions(&self) -> Vec<(&Json, bool, Scope)> {
        self.conditions
            .iter()
            .map(|(c, negated, at)| {
                let mut scope = self.clone();
                scope.ops.drain(..*at);
                scope.conditions.clear();
                (c, *negated, scope)
            })
            .collect()
    }

    /// Where field-less keywords are searched.
    pub fn keyword_subjects(&self) -> Vec<Subject> {
        if self.per_record.is_some() {
            // A raw record's text is its fields: search the ones that carry free text.
            return [
                "name",
                "exe",
                "comm",
                "cmd",
                "proctitle",
                "msg",
                "a0",
                "a1",
                "a2",
                "a3",
            ]
            .iter()
            .map(|k| Subject::Record(k.to_string()))
            .collect();
        }
        self.keyword_fields
            .iter()
            .map(|f| Subject::Field(FieldPath::parse(f)))
            .collect()
    }

    /// The events the log source covers, as a predicate.
    pub fn guard(&self) -> Option<Expr> {
        if self.guard.is_empty() {
            return None;
        }
        // Exact and case-sensitive: the readers write these values in lower case.
        let parts = self
            .guard
            .iter()
            .map(|(f, v)| {
                Expr::any_of(
                    vec![FieldPath::parse(f)],
                    Expr::cmp(
                        CmpOp::Eq,
                        Expr::Slot(0),
                        Expr::lit(Value::str(v)),
                        Fold::Sensitive,
                    ),
                )
            })
            .collect();
        Some(Expr::And(parts))
    }

    /// The rule's predicate as evaluated on events: per record when the log source says so.
    pub fn wrap(&self, expr: Expr) -> Expr {
        match &self.per_record {
            None => expr,
            Some(records) => Expr::Call {
                func: Func::ArraySearch,
                args: vec![
                    Expr::Field(FieldPath::parse(records)),
                    Expr::lit(Value::str("record")),
                    expr,
                ],
                fold: Fold::Sensitive,
            },
        }
    }

    pub fn per_record(&self) -> bool {
        self.per_record.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_pipeline_maps_the_linux_taxonomy() {
        let p = Pipeline::ecs_linux();
        let proc = LogSource {
            category: Some("process_creation".into()),
            product: Some("linux".into()),
            service: None,
        };
        let s = p.scope_for(&proc);
        match s.subject("Image") {
            Subject::Field(f) => assert_eq!(f.as_str(), "process.executable"),
            other => panic!("{other:?}"),
        }
        assert!(s.guard().is_some());
        let audit = LogSource {
            service: Some("auditd".into()),
            product: Some("linux".into()),
            category: None,
        };
        assert!(p.scope_for(&audit).per_record());
        // Unknown names are used as written (ECS names in Sigma rules work).
        match p.scope_for(&LogSource::default()).subject("file.path") {
            Subject::Field(f) => assert_eq!(f.as_str(), "file.path"),
            other => panic!("{other:?}"),
        }
    }
}
