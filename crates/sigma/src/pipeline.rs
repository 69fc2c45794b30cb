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

/// A field mapping pipeline.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    pub name: String,
    keyword_fields: Vec<String>,
    /// `expand` placeholders: name (without `%`) → values.
    placeholders: HashMap<String, Vec<String>>,
    sources: Vec<SourceRule>,
    fields: HashMap<String, String>,
}

/// The pipeline shipped with unithunt: Sigma's Linux taxonomy onto the ECS the readers produce.
pub const ECS_LINUX: &str = include_str!("../../../pipelines/ecs-linux.yml");

impl Pipeline {
    /// The built-in ECS pipeline.
    pub fn ecs_linux() -> Pipeline {
        Pipeline::parse(ECS_LINUX).expect("the built-in pipeline is tested to load")
    }

    pub fn parse(text: &str) -> Result<Pipeline, String> {
        let doc: Json = serde_saphyr::from_str(text).map_err(|e| format!("YAML: {e}"))?;
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
        let mut p = Pipeline {
            name: doc
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or("pipeline")
                .to_string(),
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
        Ok(p)
    }

    /// What applies to rules of `source`: the first log source entry that matches it.
    pub fn scope_for(&self, source: &LogSource) -> Scope {
        let matches = |want: &Option<String>, have: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| have.as_deref() == Some(w.as_str()))
        };
        let entry = self.sources.iter().find(|s| {
            matches(&s.category, &source.category)
                && matches(&s.product, &source.product)
                && matches(&s.service, &source.service)
        });
        let mut fields = self.fields.clone();
        if let Some(e) = entry {
            fields.extend(e.fields.clone());
        }
        Scope {
            fields,
            guard: entry.map(|e| e.guard.clone()).unwrap_or_default(),
            per_record: entry.and_then(|e| e.per_record.clone()),
            keyword_fields: self.keyword_fields.clone(),
            placeholders: self.placeholders.clone(),
        }
    }
}

/// The mapping in force for one rule.
#[derive(Clone, Debug)]
pub struct Scope {
    fields: HashMap<String, String>,
    guard: Vec<(String, String)>,
    per_record: Option<String>,
    keyword_fields: Vec<String>,
    placeholders: HashMap<String, Vec<String>>,
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
    /// The event field Sigma field name `name` reads under this mapping (itself when unmapped),
    /// for what names fields outside a detection (a correlation's `group-by` and `field`).
    pub fn field_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.fields.get(name).map(String::as_str).unwrap_or(name)
    }

    /// The values of `expand` placeholder `name`.
    pub fn placeholder(&self, name: &str) -> Option<&[String]> {
        self.placeholders.get(name).map(Vec::as_slice)
    }

    pub fn subject(&self, name: &str) -> Subject {
        if self.per_record.is_some() {
            return Subject::Record(name.to_string());
        }
        let mapped = self.fields.get(name).map(String::as_str).unwrap_or(name);
        Subject::Field(FieldPath::parse(mapped))
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
