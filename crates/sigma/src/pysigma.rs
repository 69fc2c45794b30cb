//! pySigma's processing pipeline format (`ProcessingPipeline.from_dict`, pySigma 0.11 to 1.x), read
//! as data into the same [`Scope`] the built-in pipeline gives: the transformations that decide
//! what a rule matches are run (field name mappings, prefixes and suffixes, added conditions,
//! placeholders, rule failures), under their log source conditions, in order; what only shapes a
//! backend's query text (`postprocessing`, `finalizers`) is accepted and said. Anything else is
//! refused with the reason, never skipped: a pipeline that half-applies would change what rules
//! match without a word.
//!
//! ```yaml
//! name: my fields
//! priority: 20
//! vars: {admins: [root, toor]}
//! transformations:
//!   - id: proc
//!     type: field_name_mapping
//!     mapping: {Image: [process.executable, process.name], User: user.name}
//!     rule_conditions: [{type: logsource, product: linux, category: process_creation}]
//!   - type: add_condition
//!     conditions: {event.category: process}
//!     rule_conditions: [{type: logsource, category: process_creation}]
//!   - type: value_placeholders
//! ```

use crate::load::LogSource;
use crate::pipeline::{logsource_field_matches, FieldOp, Scope};
use regex::Regex;
use serde_json::Value as Json;
use std::collections::HashMap;

/// Top-level keys pySigma accepts (1.x refuses others).
const TOP_KEYS: &[&str] = &[
    "name",
    "priority",
    "allowed_backends",
    "vars",
    "transformations",
    "postprocessing",
    "finalizers",
];

/// At most this many transformations in one pipeline (a crafted file must not make every rule's
/// scope walk millions).
pub const MAX_ITEMS: usize = 10_000;

/// Whether a pipeline document is in pySigma's format.
pub fn is_pysigma(doc: &Json) -> bool {
    [
        "transformations",
        "vars",
        "priority",
        "postprocessing",
        "finalizers",
        "allowed_backends",
    ]
    .iter()
    .any(|k| doc.get(k).is_some())
}

/// One transformation, under its rule conditions.
#[derive(Clone, Debug)]
pub struct Item {
    id: String,
    when: RuleCondition,
    action: Action,
}

#[derive(Clone, Debug)]
enum Action {
    Map(HashMap<String, Vec<String>>),
    PrefixMap(Vec<(String, Vec<String>)>),
    Affix {
        prefix: bool,
        text: String,
        filter: FieldFilter,
    },
    AddCondition {
        conditions: Json,
        negated: bool,
        template: bool,
    },
    ValuePlaceholders {
        names: NameFilter,
        vars: HashMap<String, Vec<String>>,
    },
    WildcardPlaceholders(NameFilter),
    RuleFailure(String),
    KeywordFields(Vec<String>),
}

/// `rule_conditions` (log sources only), `rule_cond_op`, `rule_cond_not`.
#[derive(Clone, Debug, Default)]
struct RuleCondition {
    logsources: Vec<LogSource>,
    any: bool,
    not: bool,
}

impl RuleCondition {
    fn holds(&self, source: &LogSource) -> bool {
        // pySigma: no conditions means the item applies (`rule_cond_not` alone is ignored).
        if self.logsources.is_empty() {
            return true;
        }
        let one = |c: &LogSource| {
            logsource_field_matches(&c.category, &source.category)
                && logsource_field_matches(&c.product, &source.product)
                && logsource_field_matches(&c.service, &source.service)
        };
        linked(&self.logsources, self.any, self.not, one)
    }
}

/// Conditions linked as pySigma links them: all (`and`) or any (`or`), then negated or not.
fn linked<T>(conds: &[T], any: bool, not: bool, one: impl Fn(&T) -> bool) -> bool {
    let r = if any {
        conds.iter().any(one)
    } else {
        conds.iter().all(one)
    };
    r != not
}

/// `field_name_conditions` of a prefix or suffix: `include_fields` / `exclude_fields` (plain
/// or `re`, anchored at the start as Python's `re.match`), `processing_item_applied`.
#[derive(Clone, Debug, Default)]
pub struct FieldFilter {
    conds: Vec<FieldCond>,
    any: bool,
    not: bool,
}

#[derive(Clone, Debug)]
enum FieldCond {
    Include(NameSet),
    Exclude(NameSet),
    Applied(String),
}

#[derive(Clone, Debug)]
enum NameSet {
    Plain(Vec<String>),
    Re(Vec<Regex>),
}

impl NameSet {
    fn contains(&self, name: &str) -> bool {
        match self {
            NameSet::Plain(v) => v.iter().any(|f| f == name),
            NameSet::Re(v) => v.iter().any(|r| r.is_match(name)),
        }
    }
}

impl FieldFilter {
    /// Whether the transformation applies to field `name`, which the items `applied` made.
    pub fn selects(&self, name: &str, applied: &[&str]) -> bool {
        if self.conds.is_empty() {
            // pySigma: with no conditions, `field_name_cond_not` makes the item never apply.
            return !self.not;
        }
        let one = |c: &FieldCond| match c {
            FieldCond::Include(s) => s.contains(name),
            FieldCond::Exclude(s) => !s.contains(name),
            FieldCond::Applied(id) => applied.contains(&id.as_str()),
        };
        linked(&self.conds, self.any, self.not, one)
    }
}

/// `include` / `exclude` of the placeholder transformations.
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    include: Option<Vec<String>>,
    exclude: Vec<String>,
}

impl NameFilter {
    pub fn selects(&self, name: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|i| i.iter().any(|x| x == name))
            && !self.exclude.iter().any(|x| x == name)
    }
}

fn strings(v: &Json, what: &str) -> Result<Vec<String>, String> {
    match v {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(a) => a
            .iter()
            .map(|x| match x {
                Json::String(s) => Ok(s.clone()),
                Json::Number(n) => Ok(n.to_string()),
                _ => Err(format!("{what}: expected strings")),
            })
            .collect(),
        Json::Number(n) => Ok(vec![n.to_string()]),
        _ => Err(format!("{what}: expected a string or a list of strings")),
    }
}

fn str_map(v: Option<&Json>, what: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let m = v
        .and_then(Json::as_object)
        .ok_or_else(|| format!("{what}: `mapping` must be a mapping"))?;
    m.iter()
        .map(|(k, v)| Ok((k.clone(), strings(v, &format!("{what}: `{k}`"))?)))
        .collect()
}

fn conditions_of(v: Option<&Json>, what: &str) -> Result<Vec<Json>, String> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) => Ok(a.clone()),
        // A mapping from name to condition (for `*_cond_expr`).
        Some(Json::Object(m)) => Ok(m.values().cloned().collect()),
        Some(_) => Err(format!("{what} must be a list")),
    }
}

fn op_any(item: &Json, key: &str, at: &str) -> Result<bool, String> {
    match item.get(key).and_then(Json::as_str) {
        None | Some("and") => Ok(false),
        Some("or") => Ok(true),
        // pySigma 0.11.19+ silently reads anything else as `and`; refusing is kinder.
        Some(other) => Err(format!(
            "{at}: `{key}: {other}` (pySigma knows `and` and `or`)"
        )),
    }
}

fn rule_condition(item: &Json, at: &str) -> Result<RuleCondition, String> {
    if item.get("rule_cond_expr").is_some() {
        return Err(format!(
            "{at}: `rule_cond_expr` is not supported (use `rule_cond_op`)"
        ));
    }
    let mut c = RuleCondition {
        any: op_any(item, "rule_cond_op", at)?,
        not: item
            .get("rule_cond_not")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        ..RuleCondition::default()
    };
    for cond in conditions_of(
        item.get("rule_conditions"),
        &format!("{at}: rule_conditions"),
    )? {
        match cond.get("type").and_then(Json::as_str) {
            Some("logsource") => {
                let get = |k: &str| cond.get(k).and_then(Json::as_str).map(str::to_string);
                c.logsources.push(LogSource {
                    category: get("category"),
                    product: get("product"),
                    service: get("service"),
                });
            }
            Some(other) => {
                return Err(format!(
                    "{at}: the rule condition `{other}` is not supported (unithunt runs `logsource` conditions)"
                ))
            }
            None => return Err(format!("{at}: a rule condition needs `type`")),
        }
    }
    Ok(c)
}

fn field_filter(item: &Json, at: &str) -> Result<FieldFilter, String> {
    if item.get("field_name_cond_expr").is_some() {
        return Err(format!("{at}: `field_name_cond_expr` is not supported"));
    }
    let mut f = FieldFilter {
        any: op_any(item, "field_name_cond_op", at)?,
        not: item
            .get("field_name_cond_not")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        conds: Vec::new(),
    };
    for cond in conditions_of(
        item.get("field_name_conditions"),
        &format!("{at}: field_name_conditions"),
    )? {
        let t = cond.get("type").and_then(Json::as_str).unwrap_or("");
        let set = || -> Result<NameSet, String> {
            let fields = strings(
                cond.get("fields").unwrap_or(&Json::Null),
                &format!("{at}: {t}: fields"),
            )?;
            // `mode` (pySigma 1.x; `type` in 0.11, where it clashed with the condition's type).
            match cond.get("mode").and_then(Json::as_str).unwrap_or("plain") {
                "plain" => Ok(NameSet::Plain(fields)),
                "re" => fields
                    .iter()
                    .map(|r| {
                        Regex::new(&format!("^(?:{r})"))
                            .map_err(|e| format!("{at}: {t}: bad regex {r:?}: {e}"))
                    })
                    .collect::<Result<_, _>>()
                    .map(NameSet::Re),
                m => Err(format!("{at}: {t}: mode `{m}` (expected plain or re)")),
            }
        };
        f.conds.push(match t {
            "include_fields" => FieldCond::Include(set()?),
            "exclude_fields" => FieldCond::Exclude(set()?),
            "processing_item_applied" => FieldCond::Applied(
                cond.get("processing_item_id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("{at}: processing_item_applied needs processing_item_id"))?
                    .to_string(),
            ),
            other => {
                return Err(format!(
                    "{at}: the field name condition `{other}` is not supported (include_fields, exclude_fields, processing_item_applied)"
                ))
            }
        });
    }
    Ok(f)
}

fn name_filter(item: &Json, at: &str) -> Result<NameFilter, String> {
    Ok(NameFilter {
        include: match item.get("include") {
            None | Some(Json::Null) => None,
            Some(v) => Some(strings(v, &format!("{at}: include"))?),
        },
        exclude: match item.get("exclude") {
            None | Some(Json::Null) => Vec::new(),
            Some(v) => strings(v, &format!("{at}: exclude"))?,
        },
    })
}

/// Checks an item holds only the keys its type takes (pySigma: "unexpected keyword argument").
fn only_keys(item: &Json, allowed: &[&str], at: &str) -> Result<(), String> {
    const COMMON: &[&str] = &[
        "id",
        "type",
        "rule_conditions",
        "rule_cond_op",
        "rule_cond_not",
        "rule_cond_expr",
        "detection_item_conditions",
        "detection_item_cond_op",
        "detection_item_cond_not",
        "detection_item_cond_expr",
        "field_name_conditions",
        "field_name_cond_op",
        "field_name_cond_not",
        "field_name_cond_expr",
    ];
    for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
        if !COMMON.contains(&k.as_str()) && !allowed.contains(&k.as_str()) {
            return Err(format!("{at}: unexpected key `{k}`"));
        }
    }
    if item.get("detection_item_conditions").is_some() {
        return Err(format!(
            "{at}: `detection_item_conditions` are not supported"
        ));
    }
    Ok(())
}

/// Reads a pySigma pipeline: its name, priority, notes and transformations.
pub fn parse(doc: &Json) -> Result<(String, i64, Vec<String>, Vec<Item>), String> {
    let obj = doc.as_object().ok_or("a pipeline is a mapping")?;
    for k in obj.keys() {
        if !TOP_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "unknown key `{k}` (a pySigma pipeline has {})",
                TOP_KEYS.join(", ")
            ));
        }
    }
    let name = doc
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or("pipeline")
        .to_string();
    let priority = doc.get("priority").and_then(Json::as_i64).unwrap_or(0);
    let mut vars: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(v) = doc.get("vars") {
        let m = v.as_object().ok_or("`vars` must be a mapping")?;
        for (k, v) in m {
            vars.insert(k.clone(), strings(v, &format!("vars: `{k}`"))?);
        }
    }
    let mut notes = Vec::new();
    for k in ["postprocessing", "finalizers"] {
        if let Some(Json::Array(a)) = doc.get(k) {
            if !a.is_empty() {
                notes.push(format!(
                    "pipeline {name:?}: {} `{k}` item(s) shape a backend's query text; unithunt evaluates rules itself and does not use them",
                    a.len()
                ));
            }
        }
    }
    let list = match doc.get("transformations") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(a)) => a.clone(),
        Some(_) => return Err("`transformations` must be a list".into()),
    };
    if list.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} transformations"));
    }
    let mut items = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("transformation {}", i + 1);
        let t = item
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{at}: missing transformation type"))?;
        let at = format!("{at} ({t})");
        let action = action_of(item, t, &at, &vars, &mut items)?;
        if matches!(
            action,
            Action::Map(_)
                | Action::PrefixMap(_)
                | Action::AddCondition { .. }
                | Action::ValuePlaceholders { .. }
                | Action::WildcardPlaceholders(_)
                | Action::RuleFailure(_)
        ) && item.get("field_name_conditions").is_some()
        {
            return Err(format!(
                "{at}: `field_name_conditions` on this transformation are not supported"
            ));
        }
        items.push(Item {
            id: item
                .get("id")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
            when: rule_condition(item, &at)?,
            action,
        });
    }
    Ok((name, priority, notes, items))
}

/// The transformation an item of type `t` describes, checked (`items`: where an extra item is
/// added, the keyword field of a `field_name_mapping` with a null key).
fn action_of(
    item: &Json,
    t: &str,
    at: &str,
    vars: &HashMap<String, Vec<String>>,
    items: &mut Vec<Item>,
) -> Result<Action, String> {
    Ok(match t {
        "field_name_mapping" => {
            only_keys(item, &["mapping"], at)?;
            let mut map: HashMap<String, Vec<String>> =
                str_map(item.get("mapping"), at)?.into_iter().collect();
            // pySigma 1.x: a null key (`~: message`) names the field keywords (field-less
            // values) are searched in.
            let keywords = ["~", "null", ""]
                .iter()
                .find_map(|k| map.remove(*k));
            match keywords {
                Some(fields) if map.is_empty() => Action::KeywordFields(fields),
                Some(fields) => {
                    items.push(Item {
                        id: item.get("id").and_then(Json::as_str).unwrap_or("").to_string(),
                        when: rule_condition(item, at)?,
                        action: Action::KeywordFields(fields),
                    });
                    Action::Map(map)
                }
                None => Action::Map(map),
            }
        }
        "field_name_prefix_mapping" => {
            only_keys(item, &["mapping"], at)?;
            Action::PrefixMap(str_map(item.get("mapping"), at)?)
        }
        "field_name_prefix" | "field_name_suffix" => {
            let key = if t == "field_name_prefix" { "prefix" } else { "suffix" };
            only_keys(item, &[key], at)?;
            Action::Affix {
                prefix: t == "field_name_prefix",
                text: item
                    .get(key)
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("{at}: needs `{key}`"))?
                    .to_string(),
                filter: field_filter(item, at)?,
            }
        }
        "add_condition" => {
            only_keys(item, &["conditions", "name", "template", "negated"], at)?;
            let conditions = item
                .get("conditions")
                .filter(|c| c.is_object())
                .ok_or_else(|| format!("{at}: `conditions` must be a mapping"))?
                .clone();
            Action::AddCondition {
                conditions,
                negated: item.get("negated").and_then(Json::as_bool).unwrap_or(false),
                template: item.get("template").and_then(Json::as_bool).unwrap_or(false),
            }
        }
        "value_placeholders" => {
            only_keys(item, &["include", "exclude"], at)?;
            Action::ValuePlaceholders {
                names: name_filter(item, at)?,
                vars: vars.clone(),
            }
        }
        "wildcard_placeholders" => {
            only_keys(item, &["include", "exclude"], at)?;
            Action::WildcardPlaceholders(name_filter(item, at)?)
        }
        "rule_failure" => {
            only_keys(item, &["message"], at)?;
            Action::RuleFailure(
                item.get("message")
                    .and_then(Json::as_str)
                    .unwrap_or("the pipeline refuses this rule")
                    .to_string(),
            )
        }
        other => {
            return Err(format!(
                "{at}: the transformation `{other}` is not supported (unithunt runs field_name_mapping, field_name_prefix_mapping, field_name_prefix, field_name_suffix, add_condition, value_placeholders, wildcard_placeholders, rule_failure)"
            ))
        }
    })
}

/// `$category`, `$product`, `$service` in an `add_condition` template (Python's
/// `string.Template.safe_substitute`: unknown names stay as written).
fn template(v: &Json, source: &LogSource) -> Json {
    match v {
        Json::String(s) => {
            let mut out = s.clone();
            for (k, val) in [
                ("category", &source.category),
                ("product", &source.product),
                ("service", &source.service),
            ] {
                let val = val.as_deref().unwrap_or("");
                out = out
                    .replace(&format!("${{{k}}}"), val)
                    .replace(&format!("${k}"), val);
            }
            Json::String(out)
        }
        Json::Array(a) => Json::Array(a.iter().map(|x| template(x, source)).collect()),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), template(x, source)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Item {
    pub(crate) fn apply(&self, source: &LogSource, scope: &mut Scope) {
        if !self.when.holds(source) {
            return;
        }
        match &self.action {
            Action::Map(m) => scope.ops.push(FieldOp::Map(self.id.clone(), m.clone())),
            Action::PrefixMap(list) => scope
                .ops
                .push(FieldOp::PrefixMap(self.id.clone(), list.clone())),
            Action::Affix {
                prefix,
                text,
                filter,
            } => scope.ops.push(FieldOp::Affix {
                id: self.id.clone(),
                prefix: *prefix,
                text: text.clone(),
                filter: filter.clone(),
            }),
            Action::AddCondition {
                conditions,
                negated,
                template: t,
            } => {
                let c = if *t {
                    template(conditions, source)
                } else {
                    conditions.clone()
                };
                scope.conditions.push((c, *negated, scope.ops.len()));
            }
            Action::ValuePlaceholders { names, vars } => {
                for (k, v) in vars {
                    if names.selects(k) && !scope.placeholders.contains_key(k) {
                        scope.placeholders.insert(k.clone(), v.clone());
                    }
                }
            }
            Action::WildcardPlaceholders(f) => scope.wildcards.push(f.clone()),
            Action::KeywordFields(f) => scope.keyword_fields = f.clone(),
            Action::RuleFailure(m) => {
                if scope.failure.is_none() {
                    scope.failure = Some(m.clone());
                }
            }
        }
    }
}
