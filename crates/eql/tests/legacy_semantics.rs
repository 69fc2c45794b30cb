//! The legacy dialect keeps the Python engine's behaviour, which differs from Elasticsearch's on
//! purpose. These tests pin the differences so neither dialect drifts into the other.

use serde_json::{json, Value as Json};
use std::sync::Arc;
use unithunt_engine::{Output, RunOptions, Runner};
use unithunt_eql::{compile, fold_constant, EqlOptions};
use unithunt_event::Value;

fn run(query: &str, opts: &EqlOptions, events: &[Json]) -> Vec<Vec<i64>> {
    let q = compile(query, opts).unwrap_or_else(|e| panic!("{}", e.render(query, "query")));
    let mut r = Runner::new(&q, RunOptions::default());
    for (i, e) in events.iter().enumerate() {
        let doc = Arc::new(e.clone());
        let mask = r.evaluate(&doc);
        r.advance(doc, i as i64, mask);
    }
    r.finish()
        .outputs
        .iter()
        .map(|o| match o {
            Output::Event(e) => vec![e["id"].as_i64().unwrap()],
            Output::Sequence { events, .. } => events
                .iter()
                .map(|e| e.as_ref().map_or(-1, |d| d["id"].as_i64().unwrap()))
                .collect(),
        })
        .collect()
}

#[test]
fn negation_is_three_valued_in_legacy_and_must_not_in_elasticsearch() {
    let events = [json!({"id": 1, "event_type": "process", "event": {"category": "process"}})];
    let legacy = run(
        "process where not (exit_code > 0)",
        &EqlOptions::legacy(),
        &events,
    );
    assert!(
        legacy.is_empty(),
        "legacy: not null is null, so the event is filtered out"
    );
    let es = run(
        "process where not (exit_code > 0)",
        &EqlOptions::elasticsearch(),
        &events,
    );
    assert_eq!(
        es,
        vec![vec![1]],
        "Elasticsearch: must_not holds on a missing field"
    );
    assert_eq!(
        fold_constant("null == null", &EqlOptions::legacy()).unwrap(),
        Value::Bool(true)
    );
    assert!(fold_constant("not (null < 1)", &EqlOptions::legacy())
        .unwrap()
        .is_null());
}

#[test]
fn legacy_equality_is_case_insensitive_with_wildcards_and_elasticsearch_is_literal() {
    let events = [
        json!({"id": 1, "event_type": "process", "event": {"category": "process"}, "process_name": "SystemCtl.EXE", "process": {"name": "SystemCtl.EXE"}}),
    ];
    assert_eq!(
        run(
            "process where process_name == 'systemctl*'",
            &EqlOptions::legacy(),
            &events
        ),
        vec![vec![1]]
    );
    assert_eq!(
        run(
            "process where process_name = \"SYSTEMCTL.exe\"",
            &EqlOptions::legacy(),
            &events
        ),
        vec![vec![1]]
    );
    let cs = EqlOptions {
        case_sensitive: true,
        ..EqlOptions::legacy()
    };
    assert!(run("process where process_name == 'systemctl*'", &cs, &events).is_empty());
    assert!(run(
        r#"process where process.name == "systemctl*""#,
        &EqlOptions::elasticsearch(),
        &events
    )
    .is_empty());
    assert_eq!(
        run(
            r#"process where process.name : "systemctl*""#,
            &EqlOptions::elasticsearch(),
            &events
        ),
        vec![vec![1]]
    );
}

#[test]
fn lineage_works_over_plain_pid_and_ppid() {
    // A web server spawns a shell that spawns systemctl; lineage over process.pid/process.parent.pid.
    let opts = EqlOptions {
        pid_field: "process.pid".into(),
        ppid_field: "process.parent.pid".into(),
        category_field: "event.category".into(),
        ..EqlOptions::legacy()
    };
    let p = |id: i64, pid: i64, ppid: i64, name: &str| json!({"id": id, "event": {"category": "process"}, "process": {"pid": pid, "name": name, "parent": {"pid": ppid}}});
    let events = [
        p(1, 100, 1, "nginx"),
        p(2, 200, 100, "sh"),
        p(3, 300, 200, "systemctl"),
        p(4, 400, 1, "systemctl"),
    ];
    let q = "process where process.name == 'systemctl' and descendant of [process where process.name == 'nginx']";
    assert_eq!(run(q, &opts, &events), vec![vec![3]]);
    let q = "process where process.name == 'systemctl' and child of [process where process.name == 'sh']";
    assert_eq!(run(q, &opts, &events), vec![vec![3]]);
    let q = "process where process.name == 'systemctl' and not descendant of [process where process.name == 'nginx']";
    assert_eq!(run(q, &opts, &events), vec![vec![4]]);
}

#[test]
fn join_ignores_order_and_legacy_pipes_work() {
    let e = |id: i64, t: &str, user: &str| json!({"id": id, "event_type": t, "user_name": user});
    let events = [
        e(1, "file", "a"),
        e(2, "process", "b"),
        e(3, "process", "a"),
        e(4, "file", "b"),
    ];
    let q = "join by user_name [process where true] [file where true]";
    assert_eq!(
        run(q, &EqlOptions::legacy(), &events),
        vec![vec![3, 1], vec![2, 4]]
    );
    let q = "any where true | unique user_name | sort id | tail 1";
    assert_eq!(run(q, &EqlOptions::legacy(), &events), vec![vec![2]]);
    assert!(
        compile(
            "any where true | unique user_name",
            &EqlOptions::elasticsearch()
        )
        .is_err(),
        "Elasticsearch has only head and tail"
    );
}

/// The seed rule used by the tests and benches is the rule pack's query, verbatim.
#[test]
fn seed_rule_fixture_is_the_rule_pack_query() {
    let pack = include_str!("../../../rules/elastic/persistence_systemd_service_seed.toml");
    let fixture = include_str!("seed_rule.eql");
    assert!(
        pack.contains(fixture.trim_end()),
        "tests/seed_rule.eql drifted from the rule file"
    );
}
