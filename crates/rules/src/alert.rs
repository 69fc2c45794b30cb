//! Alerts in the shape Elastic Security writes them (`.alerts-security.alerts-*`): the source event's
//! ECS fields at top level, `event.kind: "signal"`, the original `event.*` under
//! `kibana.alert.original_event.*`, the rule under `kibana.alert.rule.*`, ATT&CK under `threat`.
//! Sequences give one building-block alert per event and a shell alert that shares their
//! `kibana.alert.group.id`. Identifiers are UUIDv5 of stable inputs, so a rescan gives the same ids.

use crate::load::RuleMeta;
use serde_json::{json, Map, Value as Json};
use unithunt_event::{lookup_one, FieldPath};
use uuid::Uuid;

/// Where an event came from: used for its id when it has no `event.id`. The byte offset of its
/// line (in the decompressed input) identifies it exactly and is known without counting lines.
#[derive(Clone, Debug)]
pub struct EventOrigin {
    pub file: String,
    pub offset: u64,
}

/// Fields alerts read, parsed once.
fn path(name: &str) -> &'static FieldPath {
    use std::sync::OnceLock;
    static PATHS: OnceLock<Vec<(&'static str, FieldPath)>> = OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        [
            "event.id",
            "event.category",
            "process.name",
            "process.parent.name",
            "file.name",
            "file.path",
            "user.name",
            "host.name",
        ]
        .into_iter()
        .map(|p| (p, FieldPath::parse(p)))
        .collect()
    });
    &paths
        .iter()
        .find(|(p, _)| *p == name)
        .expect("a known alert field")
        .1
}

fn text(doc: &Json, name: &str) -> Option<String> {
    let v = lookup_one(doc, path(name))?;
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Array(a) => a.first().and_then(|x| x.as_str().map(str::to_string)),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn event_id(doc: &Json, origin: &EventOrigin) -> String {
    text(doc, "event.id").unwrap_or_else(|| format!("{}@{}", origin.file, origin.offset))
}

/// Elastic's alert reason: what happened, who, where, and which rule.
pub fn reason(meta: &RuleMeta, doc: &Json) -> String {
    let category = text(doc, "event.category").unwrap_or_else(|| "event".into());
    let mut parts = Vec::new();
    if let Some(p) = text(doc, "process.name") {
        parts.push(format!("process {p}"));
    }
    if let Some(p) = text(doc, "process.parent.name") {
        parts.push(format!("parent process {p}"));
    }
    if let Some(f) = text(doc, "file.name").or_else(|| text(doc, "file.path")) {
        parts.push(format!("file {f}"));
    }
    let mut s = format!("{category} event");
    if !parts.is_empty() {
        s.push_str(" with ");
        s.push_str(&parts.join(", "));
        s.push(',');
    }
    if let Some(u) = text(doc, "user.name") {
        s.push_str(&format!(" by {u}"));
    }
    if let Some(h) = text(doc, "host.name") {
        s.push_str(&format!(" on {h}"));
    }
    s.push_str(&format!(" created {} alert {}.", meta.severity, meta.name));
    s
}

fn rule_fields(meta: &RuleMeta, m: &mut Map<String, Json>) {
    let rule_uuid = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("unithunt-rule:{}", meta.rule_id).as_bytes(),
    );
    let mut put = |k: &str, v: Json| {
        m.insert(k.to_string(), v);
    };
    put("kibana.alert.rule.rule_id", json!(meta.rule_id));
    put("kibana.alert.rule.uuid", json!(rule_uuid.to_string()));
    put("kibana.alert.rule.name", json!(meta.name));
    put("kibana.alert.rule.description", json!(meta.description));
    put("kibana.alert.rule.tags", json!(meta.tags));
    put("kibana.alert.rule.type", json!(meta.rule_type));
    put("kibana.alert.rule.rule_type_id", json!("siem.eqlRule"));
    put(
        "kibana.alert.rule.category",
        json!("Event Correlation Rule"),
    );
    put("kibana.alert.rule.producer", json!("siem"));
    put("kibana.alert.rule.risk_score", json!(meta.risk_score));
    put("kibana.alert.rule.severity", json!(meta.severity));
    put("kibana.alert.rule.references", json!(meta.references));
    put(
        "kibana.alert.rule.false_positives",
        json!(meta.false_positives),
    );
    put("kibana.alert.rule.threat", meta.threat.clone());
    put("kibana.alert.severity", json!(meta.severity));
    put("kibana.alert.risk_score", json!(meta.risk_score));
    put("kibana.alert.status", json!("active"));
    put("kibana.alert.workflow_status", json!("open"));
    put("kibana.space_ids", json!(["default"]));
    put("threat", meta.threat.clone());
    // A building-block rule's alerts are all building blocks (Elastic hides them from the
    // alerts table; rules and analysts query them).
    if let Some(t) = &meta.building_block_type {
        put("kibana.alert.building_block_type", json!(t));
    }
}

/// The alert for one matching event.
pub fn event_alert(meta: &RuleMeta, doc: &Json, origin: &EventOrigin) -> Json {
    let mut m = match doc {
        Json::Object(o) => o.clone(),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    };
    let id = event_id(doc, origin);
    if let Some(Json::Object(ev)) = doc.get("event") {
        for (k, v) in ev {
            m.insert(format!("kibana.alert.original_event.{k}"), v.clone());
        }
    }
    for (k, v) in doc.as_object().into_iter().flatten() {
        // Flat dotted `event.*` keys in the source are original-event fields too.
        if let Some(rest) = k.strip_prefix("event.") {
            m.insert(format!("kibana.alert.original_event.{rest}"), v.clone());
        }
    }
    match m.get_mut("event") {
        Some(Json::Object(ev)) => {
            ev.insert("kind".into(), json!("signal"));
        }
        _ => {
            m.insert("event".into(), json!({"kind": "signal"}));
        }
    }
    m.remove("event.kind");
    if let Some(ts) = doc.get("@timestamp") {
        m.insert("kibana.alert.original_time".into(), ts.clone());
    }
    rule_fields(meta, &mut m);
    m.insert("kibana.alert.reason".into(), json!(reason(meta, doc)));
    m.insert("kibana.alert.depth".into(), json!(1));
    m.insert(
        "kibana.alert.ancestors".into(),
        json!([{"id": id, "type": "event", "depth": 0, "index": origin.file}]),
    );
    let uuid = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{}|{}", meta.rule_id, id).as_bytes(),
    );
    m.insert("kibana.alert.uuid".into(), json!(uuid.to_string()));
    Json::Object(m)
}

/// The constant part of a rule's alerts, serialised once, for [`AlertTemplate::write_event_alert`].
pub struct AlertTemplate {
    meta: RuleMeta,
    /// `"kibana.alert.rule.rule_id":...,...,"threat":[...]`: the rule fields as JSON members.
    rule_members: Vec<u8>,
}

/// Source keys an alert sets itself; a source field of the same name gives way.
fn alert_owned(k: &str) -> bool {
    k.starts_with("kibana.alert.") || k == "kibana.space_ids" || k == "threat" || k == "event.kind"
}

fn member(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &Json) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    // Writing into a Vec cannot fail, and both key and value are valid JSON values.
    let _ = unithunt_event::neutral::to_writer(&mut *out, key);
    out.push(b':');
    let _ = unithunt_event::neutral::to_writer(&mut *out, value);
}

impl AlertTemplate {
    pub fn new(meta: &RuleMeta) -> AlertTemplate {
        let mut m = Map::new();
        rule_fields(meta, &mut m);
        let mut rule_members = Vec::new();
        let mut first = true;
        for (k, v) in &m {
            member(&mut rule_members, &mut first, k, v);
        }
        AlertTemplate {
            meta: meta.clone(),
            rule_members,
        }
    }

    /// Writes the same alert as [`event_alert`] as JSON text, without building it as a tree: the
    /// hot path of `scan` when every event alerts.
    pub fn write_event_alert(&self, doc: &Json, origin: &EventOrigin, out: &mut Vec<u8>) {
        let Json::Object(src) = doc else {
            let _ = unithunt_event::neutral::to_writer(
                &mut *out,
                &event_alert(&self.meta, doc, origin),
            );
            return;
        };
        let id = event_id(doc, origin);
        out.push(b'{');
        let mut first = true;
        let mut wrote_event = false;
        for (k, v) in src {
            if alert_owned(k) {
                continue;
            }
            if k == "event" {
                wrote_event = true;
                let mut ev = match v {
                    Json::Object(o) => o.clone(),
                    _ => Map::new(),
                };
                ev.insert("kind".into(), json!("signal"));
                member(out, &mut first, k, &Json::Object(ev));
                continue;
            }
            member(out, &mut first, k, v);
        }
        if !wrote_event {
            member(out, &mut first, "event", &json!({"kind": "signal"}));
        }
        if let Some(Json::Object(ev)) = src.get("event") {
            for (k, v) in ev {
                member(
                    out,
                    &mut first,
                    &format!("kibana.alert.original_event.{k}"),
                    v,
                );
            }
        }
        for (k, v) in src {
            if let Some(rest) = k.strip_prefix("event.") {
                member(
                    out,
                    &mut first,
                    &format!("kibana.alert.original_event.{rest}"),
                    v,
                );
            }
        }
        if let Some(ts) = src.get("@timestamp") {
            member(out, &mut first, "kibana.alert.original_time", ts);
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(&self.rule_members);
        first = false;
        member(
            out,
            &mut first,
            "kibana.alert.reason",
            &json!(reason(&self.meta, doc)),
        );
        member(out, &mut first, "kibana.alert.depth", &json!(1));
        member(
            out,
            &mut first,
            "kibana.alert.ancestors",
            &json!([{"id": id, "type": "event", "depth": 0, "index": origin.file}]),
        );
        let uuid = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}|{}", self.meta.rule_id, id).as_bytes(),
        );
        member(
            out,
            &mut first,
            "kibana.alert.uuid",
            &json!(uuid.to_string()),
        );
        out.push(b'}');
    }
}

/// Keeps what all documents share, field by field.
fn common(docs: &[&Json]) -> Json {
    let Some(first) = docs.first() else {
        return Json::Object(Map::new());
    };
    match first {
        Json::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                let others: Option<Vec<&Json>> = docs[1..].iter().map(|d| d.get(k)).collect();
                if let Some(mut all) = others {
                    all.insert(0, v);
                    let c = common(&all);
                    let keep = match &c {
                        Json::Object(m) => !m.is_empty(),
                        _ => all.iter().all(|x| *x == v),
                    };
                    if keep {
                        out.insert(k.clone(), c);
                    }
                }
            }
            Json::Object(out)
        }
        other => (*other).clone(),
    }
}

/// The alerts of one matched sequence: building blocks (one per present event), then the shell.
pub fn sequence_alerts(meta: &RuleMeta, events: &[(Json, EventOrigin)]) -> Vec<Json> {
    let ids: Vec<String> = events.iter().map(|(d, o)| event_id(d, o)).collect();
    let group = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{}|{}", meta.rule_id, ids.join("|")).as_bytes(),
    )
    .to_string();
    let mut out = Vec::with_capacity(events.len() + 1);
    for (i, (doc, origin)) in events.iter().enumerate() {
        let mut a = event_alert(meta, doc, origin);
        if let Json::Object(m) = &mut a {
            m.insert("kibana.alert.building_block_type".into(), json!("default"));
            m.insert("kibana.alert.group.id".into(), json!(group));
            m.insert("kibana.alert.group.index".into(), json!(i));
            m.insert(
                "kibana.alert.uuid".into(),
                json!(
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{group}|{i}").as_bytes())
                        .to_string()
                ),
            );
        }
        out.push(a);
    }
    let docs: Vec<&Json> = events.iter().map(|(d, _)| d).collect();
    let mut shell = match common(&docs) {
        Json::Object(m) => m,
        _ => Map::new(),
    };
    if let Some((first, _)) = events.first() {
        if let Some(ts) = first.get("@timestamp") {
            shell.insert("@timestamp".into(), ts.clone());
            shell.insert("kibana.alert.original_time".into(), ts.clone());
        }
    }
    match shell.get_mut("event") {
        Some(Json::Object(ev)) => {
            ev.insert("kind".into(), json!("signal"));
        }
        _ => {
            shell.insert("event".into(), json!({"kind": "signal"}));
        }
    }
    rule_fields(meta, &mut shell);
    let who = Json::Object(shell.clone());
    let what = reason(meta, &who).replacen("event event", "sequence", 1);
    shell.insert("kibana.alert.reason".into(), json!(what));
    shell.insert("kibana.alert.group.id".into(), json!(group));
    shell.insert("kibana.alert.depth".into(), json!(2));
    shell.insert(
        "kibana.alert.ancestors".into(),
        Json::Array(
            events
                .iter()
                .zip(&ids)
                .map(|((_, o), id)| json!({"id": id, "type": "event", "depth": 0, "index": o.file}))
                .collect(),
        ),
    );
    shell.insert(
        "kibana.alert.uuid".into(),
        json!(Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{group}|shell").as_bytes()).to_string()),
    );
    out.push(Json::Object(shell));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RuleMeta {
        RuleMeta {
            rule_id: "r1".into(),
            name: "Detect Systemd Service".into(),
            description: String::new(),
            rule_type: "eql".into(),
            language: "eql".into(),
            risk_score: 73,
            severity: "high".into(),
            index: vec![],
            tags: vec!["Reference".into()],
            note: None,
            false_positives: vec![],
            references: vec![],
            threat: json!([{"framework": "MITRE ATT&CK", "tactic": {"id": "TA0003"}}]),
            origin: "rules/x.toml".into(),
            sigma_name: None,
            examples: Vec::new(),
            building_block_type: None,
        }
    }

    #[test]
    fn event_alert_has_elastic_shape() {
        let doc = json!({"@timestamp": "2026-11-27T10:00:00Z", "event": {"category": ["process"], "kind": "event", "type": ["start"]},
            "process": {"name": "systemctl", "parent": {"name": "bash"}}, "user": {"name": "root"}, "host": {"name": "lab-1"}});
        let a = event_alert(
            &meta(),
            &doc,
            &EventOrigin {
                file: "f".into(),
                offset: 3,
            },
        );
        assert_eq!(a["event"]["kind"], "signal");
        assert_eq!(a["kibana.alert.original_event.kind"], "event");
        assert_eq!(
            a["kibana.alert.original_event.category"],
            json!(["process"])
        );
        assert_eq!(a["@timestamp"], "2026-11-27T10:00:00Z");
        assert_eq!(a["kibana.alert.rule.tags"], json!(["Reference"]));
        assert_eq!(a["threat"][0]["tactic"]["id"], "TA0003");
        assert_eq!(
            a["kibana.alert.reason"],
            "process event with process systemctl, parent process bash, by root on lab-1 created high alert Detect Systemd Service."
        );
        let again = event_alert(
            &meta(),
            &doc,
            &EventOrigin {
                file: "f".into(),
                offset: 3,
            },
        );
        assert_eq!(
            a["kibana.alert.uuid"], again["kibana.alert.uuid"],
            "ids are stable"
        );
    }

    #[test]
    fn written_alerts_equal_built_alerts() {
        let t = AlertTemplate::new(&meta());
        let docs = [
            json!({"@timestamp": "t", "event": {"category": ["process"], "kind": "event"}, "process": {"name": "x"}}),
            json!({"event.category": "file", "event.kind": "event", "file.path": "/etc/systemd/system/a.service"}),
            json!({"event": "odd", "threat": "spoofed", "kibana.alert.rule.name": "spoofed"}),
            json!({"no_event": true}),
        ];
        for d in &docs {
            let o = EventOrigin {
                file: "f".into(),
                offset: 9,
            };
            let mut out = Vec::new();
            t.write_event_alert(d, &o, &mut out);
            let written: Json = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(written, event_alert(&meta(), d, &o), "for {d}");
        }
    }

    #[test]
    fn sequences_give_building_blocks_and_a_shell() {
        let e1 = json!({"@timestamp": "t1", "event": {"category": ["file"]}, "host": {"name": "h"}, "user": {"name": "root"}, "file": {"name": "a.service"}});
        let e2 = json!({"@timestamp": "t2", "event": {"category": ["process"]}, "host": {"name": "h"}, "user": {"name": "root"}, "process": {"name": "systemctl"}});
        let o = |l| EventOrigin {
            file: "f".into(),
            offset: l,
        };
        let alerts = sequence_alerts(&meta(), &[(e1, o(1)), (e2, o(2))]);
        assert_eq!(alerts.len(), 3);
        let group = &alerts[2]["kibana.alert.group.id"];
        assert!(alerts.iter().all(|a| &a["kibana.alert.group.id"] == group));
        assert_eq!(alerts[0]["kibana.alert.building_block_type"], "default");
        assert!(alerts[2].get("kibana.alert.building_block_type").is_none());
        assert_eq!(
            alerts[2]["host"]["name"], "h",
            "the shell keeps fields common to all events"
        );
        assert!(alerts[2].get("file").is_none() && alerts[2].get("process").is_none());
    }
}
