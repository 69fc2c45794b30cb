//! Elasticsearch behaviours of EQL (`cases/elasticsearch.toml`): each behaviour written from its
//! reference, run in the Elasticsearch dialect; one row per behaviour in
//! `docs/conformance/eql.md`. A case may give an index `mapping` (the JSON of `GET
//! index/_mapping`) and, instead of results, the `error` the query must be refused with.

use std::sync::Arc;
use unithunt_engine::{Output, RunOptions, Runner};
use unithunt_eql::{compile, EqlOptions, Mapping};
use unithunt_event::Json;

/// One behaviour: its name, its reference, its cases run and passed, and what failed.
pub struct Behaviour {
    pub name: String,
    pub source: String,
    pub cases: usize,
    pub passed: usize,
    pub failures: Vec<String>,
}

/// Every behaviour of the case file.
pub fn run() -> Vec<Behaviour> {
    let text = include_str!("../cases/elasticsearch.toml");
    let table: toml::Table = toml::from_str(text).expect("cases/elasticsearch.toml parses");
    let behaviours = table
        .get("behaviour")
        .and_then(|b| b.as_array())
        .cloned()
        .unwrap_or_default();
    behaviours
        .iter()
        .map(|b| {
            let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let cases = b
                .get("case")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            let mut out = Behaviour {
                name: s("name"),
                source: s("source"),
                cases: cases.len(),
                passed: 0,
                failures: Vec::new(),
            };
            for (i, c) in cases.iter().enumerate() {
                match run_case(c) {
                    Ok(()) => out.passed += 1,
                    Err(why) => out.failures.push(format!("case {}: {why}", i + 1)),
                }
            }
            out
        })
        .collect()
}

fn to_json(v: &toml::Value) -> Json {
    match v {
        // TOML has no null: `"<null>"` stands for it (a null join key).
        toml::Value::String(s) if s == "<null>" => Json::Null,
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => Json::from(*f),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        other => Json::String(other.to_string()),
    }
}

fn run_case(c: &toml::Value) -> Result<(), String> {
    let query = c.get("query").and_then(|q| q.as_str()).ok_or("no query")?;
    let mut opts = EqlOptions::elasticsearch();
    if let Some(m) = c.get("mapping").and_then(|m| m.as_str()) {
        let doc: Json =
            serde_json::from_str(m).map_err(|e| format!("the mapping is not JSON: {e}"))?;
        opts.mapping = Some(Arc::new(
            Mapping::from_json(&doc).map_err(|e| format!("the mapping does not load: {e}"))?,
        ));
    }
    // `error`: the query must be refused with a message containing this text.
    if let Some(want) = c.get("error").and_then(|e| e.as_str()) {
        return match compile(query, &opts) {
            Ok(_) => Err(format!("compiled; expected the error {want:?}")),
            Err(e) if e.message.contains(want) => Ok(()),
            Err(e) => Err(format!("expected the error {want:?}, got {:?}", e.message)),
        };
    }
    let q = compile(query, &opts).map_err(|e| format!("does not compile: {}", e.message))?;
    let mut runner = Runner::new(&q, RunOptions::default());
    for e in c
        .get("events")
        .and_then(|e| e.as_array())
        .ok_or("no events")?
    {
        let doc: Json = serde_json::from_str(e.as_str().ok_or("an event is not a string")?)
            .map_err(|e| format!("an event is not JSON: {e}"))?;
        let ts = doc["@timestamp"].as_i64().unwrap_or(0) * 1_000_000;
        let doc = Arc::new(doc);
        let mask = runner.evaluate(&doc);
        runner.advance(doc, ts, mask);
    }
    let mut got: Vec<(Json, Json)> = runner
        .finish()
        .outputs
        .iter()
        .map(|o| match o {
            Output::Event(e) => (Json::Array(vec![e["id"].clone()]), Json::Null),
            Output::Sequence { events, join_keys } => (
                Json::Array(
                    events
                        .iter()
                        .map(|e| {
                            e.as_ref()
                                .map_or(Json::from("missing"), |e| e["id"].clone())
                        })
                        .collect(),
                ),
                Json::Array(join_keys.clone()),
            ),
        })
        .collect();
    let expect = to_json(c.get("expect").ok_or("no expect")?);
    let mut want: Vec<(Json, Json)> = match (expect, c.get("keys").map(to_json)) {
        (Json::Array(e), Some(Json::Array(k))) => e.into_iter().zip(k).collect(),
        (Json::Array(e), None) => e.into_iter().map(|e| (e, Json::Null)).collect(),
        _ => return Err("expect is not a list".into()),
    };
    if c.get("keys").is_none() {
        for g in &mut got {
            g.1 = Json::Null;
        }
    }
    let order = |v: &mut Vec<(Json, Json)>| v.sort_by_key(|(e, k)| format!("{e}{k}"));
    order(&mut got);
    order(&mut want);
    if got == want {
        Ok(())
    } else {
        Err(format!("expected {want:?}, got {got:?}"))
    }
}
