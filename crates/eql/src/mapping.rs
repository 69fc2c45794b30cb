//! Index mappings (`GET index/_mapping`): the field types Elasticsearch answers EQL with.
//!
//! Elasticsearch resolves every field of a query against the mappings of the indices searched
//! (`x-pack/plugin/eql` analyzer, `IndexResolver.mergedMappings`): a field in no mapping is an
//! error ("Unknown column"), an optional `?field` in no mapping is the literal `null`, an alias is
//! its target, and comparisons use the field's type (`version` by version order, `ip` by address,
//! `date` through the field's `format`, numbers numerically). [`Mapping`] holds what a query
//! needs of that: each field's path and [`FieldType`], merged over one or several indices.

use std::collections::BTreeMap;
use unithunt_event::Json;

/// At most this many fields (Elastic's ECS templates have about 1,800; a crafted file must not
/// make the resolver walk millions).
pub const MAX_FIELDS: usize = 100_000;
/// At most this deep a `properties` tree (Elasticsearch's own `index.mapping.depth.limit` is 20).
pub const MAX_DEPTH: usize = 64;

/// A field's type, as far as EQL's answers depend on it.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    /// `keyword`, `constant_keyword`, `wildcard`: exact strings. `ignore_above`: longer values
    /// are not indexed, so no query on the field matches them.
    Keyword {
        ignore_above: Option<usize>,
    },
    /// `text` (and `match_only_text`): analysed, not comparable; `exact` names a keyword
    /// sub-field Elasticsearch uses instead (`FieldAttribute.exactAttribute`).
    Text {
        exact: Option<String>,
    },
    /// `long`, `integer`, `short`, `byte`, `unsigned_long`: whole numbers (numeric strings in
    /// the source are indexed as numbers).
    Integer,
    /// `double`, `float`, `half_float`, `scaled_float`.
    Float,
    /// `date` / `date_nanos` with the field's `format` (`strict_date_optional_time||epoch_millis`
    /// by default), checked when the mapping is read.
    Date {
        format: String,
    },
    Boolean,
    Ip,
    Version,
    /// `object` / `flattened` / `nested` and anything else: not comparable as a value.
    Other(String),
}

impl FieldType {
    pub fn name(&self) -> String {
        match self {
            FieldType::Keyword { .. } => "keyword".into(),
            FieldType::Text { .. } => "text".into(),
            FieldType::Integer => "long".into(),
            FieldType::Float => "double".into(),
            FieldType::Date { .. } => "date".into(),
            FieldType::Boolean => "boolean".into(),
            FieldType::Ip => "ip".into(),
            FieldType::Version => "version".into(),
            FieldType::Other(t) => t.clone(),
        }
    }

    /// Whether two indices' types for one field are compatible (Elasticsearch merges `keyword`
    /// family types and numeric types of one kind; anything else is a conflict).
    fn compatible(&self, other: &FieldType) -> bool {
        use FieldType::*;
        matches!(
            (self, other),
            (Keyword { .. }, Keyword { .. })
                | (Integer, Integer)
                | (Float, Float)
                | (Date { .. }, Date { .. })
                | (Boolean, Boolean)
                | (Ip, Ip)
                | (Version, Version)
                | (Text { .. }, Text { .. })
        ) || matches!((self, other), (Other(a), Other(b)) if a == b)
    }
}

/// What a field of the mapping is.
#[derive(Clone, Debug, PartialEq)]
pub enum Mapped {
    Field(FieldType),
    /// `"type": "alias"`: the query means `path`.
    Alias(String),
    /// A multi-field (`fields` of a mapping, `msg.keyword`): indexed from `source`'s value.
    Sub {
        source: String,
        ty: FieldType,
    },
    /// Mapped with incompatible types in several indices: Elasticsearch refuses to use it.
    Conflict(Vec<(String, String)>),
}

/// What a field of a query resolves to.
#[derive(Clone, Copy, Debug)]
pub enum Resolved<'m> {
    Type(&'m FieldType),
    /// Each index's type, with the index.
    Conflict(&'m [(String, String)]),
}

/// The fields of one or several index mappings, by dotted path.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    fields: BTreeMap<String, Mapped>,
}

impl Mapping {
    /// Reads the body of `GET index/_mapping` (indices by name, each with `mappings`), a single
    /// `{"mappings": ..}`, or a bare `{"properties": ..}` (the body of `PUT index/_mapping`).
    /// Runtime fields (`"runtime": {..}`) count as mapped.
    pub fn from_json(doc: &Json) -> Result<Mapping, String> {
        let obj = doc
            .as_object()
            .ok_or("a mapping is a JSON object (the body of GET index/_mapping)")?;
        let mut indices: Vec<(String, &Json)> = Vec::new();
        if obj.contains_key("properties") || obj.contains_key("runtime") {
            indices.push(("(mapping)".into(), doc));
        } else if let Some(m) = obj.get("mappings") {
            indices.push(("(mapping)".into(), m));
        } else {
            for (name, body) in obj {
                let m = body.get("mappings").ok_or_else(|| {
                    format!("index {name:?} has no \"mappings\" (expected the body of GET index/_mapping)")
                })?;
                indices.push((name.clone(), m));
            }
        }
        if indices.is_empty() {
            return Err("the mapping names no index".into());
        }
        let mut merged = Mapping::default();
        let mut per_index: BTreeMap<String, Vec<(String, Mapped)>> = BTreeMap::new();
        for (index, m) in indices {
            let mut fields = Vec::new();
            if let Some(props) = m.get("properties") {
                walk(props, "", 0, &mut fields)?;
            }
            if let Some(runtime) = m.get("runtime").and_then(Json::as_object) {
                for (name, def) in runtime {
                    fields.push((name.clone(), Mapped::Field(type_of(def)?)));
                }
            }
            if fields.len() > MAX_FIELDS {
                return Err(format!(
                    "index {index:?} maps more than {MAX_FIELDS} fields"
                ));
            }
            for (path, mapped) in fields {
                per_index
                    .entry(path)
                    .or_default()
                    .push((index.clone(), mapped));
            }
        }
        for (path, defs) in per_index {
            let first = defs[0].1.clone();
            let agree = defs.iter().all(|(_, d)| match (d, &first) {
                (Mapped::Field(a), Mapped::Field(b)) => a.compatible(b),
                (Mapped::Sub { ty: a, .. }, Mapped::Sub { ty: b, .. }) => a.compatible(b),
                (a, b) => a == b,
            });
            let mapped = if agree {
                first
            } else {
                Mapped::Conflict(
                    defs.iter()
                        .map(|(index, d)| {
                            let t = match d {
                                Mapped::Field(t) | Mapped::Sub { ty: t, .. } => t.name(),
                                Mapped::Alias(_) => "alias".into(),
                                Mapped::Conflict(_) => "conflict".into(),
                            };
                            (t, index.clone())
                        })
                        .collect(),
                )
            };
            merged.fields.insert(path, mapped);
        }
        if merged.fields.len() > MAX_FIELDS {
            return Err(format!("the mappings hold more than {MAX_FIELDS} fields"));
        }
        Ok(merged)
    }

    /// What `path` is: the path whose value it reads (an alias's target, a multi-field's
    /// source) and its type. An alias to an alias, or to nothing, is `None`.
    pub fn resolve(&self, path: &str) -> Option<(String, Resolved<'_>)> {
        let (path, mapped) = match self.fields.get(path)? {
            Mapped::Alias(target) => (target.as_str(), self.fields.get(target.as_str())?),
            m => (path, m),
        };
        Some(match mapped {
            Mapped::Field(t) => (path.to_string(), Resolved::Type(t)),
            Mapped::Sub { source, ty } => (source.clone(), Resolved::Type(ty)),
            Mapped::Conflict(defs) => (path.to_string(), Resolved::Conflict(defs)),
            Mapped::Alias(_) => return None,
        })
    }

    /// The type a comparison on `path` (a resolved path) uses: a `text` field's keyword
    /// sub-field's, as Elasticsearch's `exactAttribute`.
    pub fn type_of(&self, path: &str) -> Option<&FieldType> {
        match self.resolve(path)?.1 {
            Resolved::Type(FieldType::Text { exact: Some(sub) }) => match self.resolve(sub)?.1 {
                Resolved::Type(t) => Some(t),
                Resolved::Conflict(_) => None,
            },
            Resolved::Type(t) => Some(t),
            Resolved::Conflict(_) => None,
        }
    }

    /// Mapped fields similar to `path` (Levenshtein similarity of at least 0.5, the most similar
    /// first), as Elasticsearch's "did you mean" lists them (`StringUtils.findSimilar`).
    pub fn similar(&self, path: &str) -> Vec<&str> {
        let mut scored: Vec<(usize, &str)> = self
            .fields
            .iter()
            .filter(|(_, m)| match m {
                Mapped::Field(t) | Mapped::Sub { ty: t, .. } => !matches!(t, FieldType::Other(_)),
                _ => false,
            })
            .filter_map(|(k, _)| {
                let longest = k.chars().count().max(path.chars().count()).max(1);
                let d = crate::lower::edit_distance(k, path);
                (2 * d <= longest).then_some((d * 1000 / longest, k.as_str()))
            })
            .collect();
        scored.sort();
        scored.into_iter().take(5).map(|(_, k)| k).collect()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn type_of(def: &Json) -> Result<FieldType, String> {
    let t = def.get("type").and_then(Json::as_str).unwrap_or("object");
    let ignore_above = def
        .get("ignore_above")
        .and_then(Json::as_u64)
        .map(|n| n as usize);
    Ok(match t {
        "keyword" | "constant_keyword" => FieldType::Keyword { ignore_above },
        "wildcard" => FieldType::Keyword { ignore_above },
        "text" | "match_only_text" => FieldType::Text { exact: None },
        "long" | "integer" | "short" | "byte" | "unsigned_long" => FieldType::Integer,
        "double" | "float" | "half_float" | "scaled_float" => FieldType::Float,
        "date" | "date_nanos" => {
            let format = def
                .get("format")
                .and_then(Json::as_str)
                .unwrap_or("strict_date_optional_time||epoch_millis");
            unithunt_engine::typed::DateFormats::parse(format)?;
            FieldType::Date {
                format: format.to_string(),
            }
        }
        "boolean" => FieldType::Boolean,
        "ip" => FieldType::Ip,
        "version" => FieldType::Version,
        other => FieldType::Other(other.to_string()),
    })
}

/// Flattens a `properties` tree into dotted paths; multi-fields (`fields`) become `path.sub`.
fn walk(
    props: &Json,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, Mapped)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the mapping nests deeper than {MAX_DEPTH} levels at {prefix:?}"
        ));
    }
    let props = props
        .as_object()
        .ok_or_else(|| format!("\"properties\" of {prefix:?} is not an object"))?;
    for (name, def) in props {
        if out.len() > MAX_FIELDS {
            return Err(format!("the mapping holds more than {MAX_FIELDS} fields"));
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let t = def.get("type").and_then(Json::as_str);
        if t == Some("alias") {
            let target = def
                .get("path")
                .and_then(Json::as_str)
                .ok_or_else(|| format!("alias {path:?} has no \"path\""))?;
            out.push((path, Mapped::Alias(target.to_string())));
            continue;
        }
        if let Some(sub) = def.get("properties") {
            // An object: its own path is mapped (as an object), its children are fields.
            out.push((
                path.clone(),
                Mapped::Field(FieldType::Other(t.unwrap_or("object").into())),
            ));
            walk(sub, &path, depth + 1, out)?;
            continue;
        }
        let mut ty = type_of(def)?;
        if let Some(multi) = def.get("fields").and_then(Json::as_object) {
            for (sub, sub_def) in multi {
                let sub_ty = type_of(sub_def)?;
                if let FieldType::Text { exact } = &mut ty {
                    if exact.is_none() && matches!(sub_ty, FieldType::Keyword { .. }) {
                        *exact = Some(format!("{path}.{sub}"));
                    }
                }
                out.push((
                    format!("{path}.{sub}"),
                    Mapped::Sub {
                        source: path.clone(),
                        ty: sub_ty,
                    },
                ));
            }
        }
        out.push((path, Mapped::Field(ty)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_indices_multi_fields_runtime_fields_and_aliases() {
        let m = Mapping::from_json(&json!({
            "a": {"mappings": {
                "properties": {
                    "msg": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
                    "process": {"properties": {"pid": {"type": "long"}}},
                    "pid": {"type": "alias", "path": "process.pid"}
                },
                "runtime": {"day": {"type": "keyword"}}
            }},
            "b": {"mappings": {"properties": {"process": {"properties": {"pid": {"type": "integer"}}}}}}
        }))
        .unwrap();
        // Compatible numeric types across indices merge; the alias reads its target.
        assert_eq!(m.type_of("process.pid"), Some(&FieldType::Integer));
        assert_eq!(m.resolve("pid").unwrap().0, "process.pid");
        // A text field compares as its keyword sub-field, which reads the text field's value.
        assert_eq!(
            m.type_of("msg"),
            Some(&FieldType::Keyword {
                ignore_above: Some(256)
            })
        );
        assert_eq!(m.resolve("msg.keyword").unwrap().0, "msg");
        assert!(m.type_of("day").is_some());
        assert!(m.resolve("nothing").is_none());
    }

    #[test]
    fn hostile_or_unsupported_mappings_are_refused_with_the_reason() {
        let mut deep = json!({"type": "keyword"});
        for _ in 0..(MAX_DEPTH + 2) {
            deep = json!({"properties": {"x": deep}});
        }
        let e = Mapping::from_json(&json!({"properties": {"x": deep}})).unwrap_err();
        assert!(e.contains("nests deeper than"), "{e}");
        let e = Mapping::from_json(
            &json!({"properties": {"d": {"type": "date", "format": "week_date"}}}),
        )
        .unwrap_err();
        assert!(e.contains("\"week_date\" is not supported"), "{e}");
        let e = Mapping::from_json(&json!({"idx": {"settings": {}}})).unwrap_err();
        assert!(e.contains("has no \"mappings\""), "{e}");
        let e = Mapping::from_json(&json!([1])).unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
    }
}
