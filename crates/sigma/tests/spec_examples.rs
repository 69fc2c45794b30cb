//! Every example of the Sigma specification's `tests/schema/` loads, and what it says holds: the
//! rules match the events they describe (case-insensitively, as Sigma values do) and not others,
//! the correlations keep their type, rules, grouping and time span, and the filters their rules
//! and selection. Read from `../shared/peer/sigma-spec/` (not copied).

use serde_json::json;
use std::path::PathBuf;
use unithunt_engine::{is_true, EvalCtx};
use unithunt_sigma::correlation::{CorrelationSpec, CorrelationState, Kind};
use unithunt_sigma::{compile, compile_filter, load_documents, Pipeline, SigmaDoc};

fn spec(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/peer/sigma-spec/tests/schema")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn one(rel: &str) -> SigmaDoc {
    let mut docs = load_documents(&spec(rel), rel).unwrap();
    assert_eq!(docs.len(), 1, "{rel}");
    docs.remove(0)
}

fn matches(rel: &str, event: serde_json::Value) -> bool {
    let SigmaDoc::Rule(r) = one(rel) else {
        panic!("{rel} is a rule")
    };
    let e = compile(&r, &Pipeline::ecs_linux()).unwrap();
    is_true(&e, &mut EvalCtx::new(&event))
}

#[test]
fn rule_examples_match_what_they_describe() {
    assert!(matches(
        "rules/rule_1.yml",
        json!({"Provider_Name": "Application Error"})
    ));
    assert!(matches(
        "rules/rule_1.yml",
        json!({"Provider_Name": "APPLICATION ERROR"})
    ));
    assert!(!matches(
        "rules/rule_1.yml",
        json!({"Provider_Name": "Application Error 2"})
    ));
    assert!(!matches("rules/rule_1.yml", json!({})));
    assert!(matches(
        "rules/rule_ecs.yml",
        json!({"dns": {"question": {"name": "SigmaHQ"}}})
    ));
    assert!(matches(
        "rules/rule_ecs.yml",
        json!({"dns.question.name": "sigmahq"})
    ));
    assert!(!matches(
        "rules/rule_ecs.yml",
        json!({"dns": {"question": {"name": "sigmahq.io"}}})
    ));
    let SigmaDoc::Rule(r) = one("rules/rule_1.yml") else {
        panic!()
    };
    assert_eq!(r.level.as_deref(), Some("high"));
    assert_eq!(r.falsepositives, ["a string"]);
    assert_eq!(r.logsource.product.as_deref(), Some("windows"));
}

#[test]
fn correlation_examples_keep_what_they_correlate() {
    for (rel, kind, rules, group, span) in [
        (
            "correlation/event_count.yml",
            "event_count",
            1,
            vec!["ComputerName"],
            "1h",
        ),
        (
            "correlation/event_count_ecs.yml",
            "event_count",
            1,
            vec!["dns.question.name"],
            "1h",
        ),
        (
            "correlation/value_count.yml",
            "value_count",
            1,
            vec!["ComputerName", "WorkstationName"],
            "1d",
        ),
        (
            "correlation/temporal.yml",
            "temporal",
            3,
            vec!["ComputerName", "User"],
            "5m",
        ),
        (
            "correlation/temporal_ordered.yml",
            "temporal_ordered",
            3,
            vec!["ComputerName", "User"],
            "5m",
        ),
        (
            "correlation/value_sum.yml",
            "value_sum",
            1,
            vec!["SourceIP", "User"],
            "1h",
        ),
        (
            "correlation/value_avg.yml",
            "value_avg",
            1,
            vec!["SourceIP", "User"],
            "24h",
        ),
        (
            "correlation/value_percentile.yml",
            "value_percentile",
            1,
            vec!["ComputerName"],
            "24h",
        ),
    ] {
        let SigmaDoc::Correlation(c) = one(rel) else {
            panic!("{rel} is a correlation")
        };
        assert_eq!(c.kind, kind, "{rel}");
        assert_eq!(c.rules.len(), rules, "{rel}");
        if !group.is_empty() {
            assert_eq!(c.group_by, group, "{rel}");
        }
        assert_eq!(c.timespan.as_deref(), Some(span), "{rel}");
        // Each runs: fed what it asks for, it fires; fed less, it does not.
        let spec = CorrelationSpec::from_doc(&c).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut state = CorrelationState::new(spec.clone());
        let group = vec!["host-1".to_string()];
        let fired = match spec.kind {
            Kind::EventCount => (0..100)
                .map(|i| state.observe(0, i, group.clone(), None))
                .last(),
            Kind::ValueCount => (0..100)
                .map(|i| state.observe(0, i, group.clone(), Some(format!("user{i}"))))
                .last(),
            Kind::Temporal | Kind::TemporalOrdered => (0..3)
                .map(|r| state.observe(r, r as i64, group.clone(), None))
                .last(),
            Kind::ValueSum => [600_000, 500_000]
                .iter()
                .map(|v| state.observe(0, 1, group.clone(), Some(v.to_string())))
                .last(),
            Kind::ValueAvg => Some(state.observe(0, 1, group.clone(), Some("501".into()))),
            Kind::ValuePercentile => {
                (0..200).for_each(|i| {
                    assert!(state
                        .observe(0, i, group.clone(), Some("/usr/bin/bash".into()))
                        .is_none())
                });
                Some(state.observe(0, 200, group.clone(), Some("/tmp/x".into())))
            }
        };
        assert!(fired.flatten().is_some(), "{rel}");
        let mut fresh = CorrelationState::new(spec.clone());
        let early = match spec.kind {
            Kind::Temporal | Kind::TemporalOrdered => fresh.observe(1, 0, group.clone(), None),
            Kind::ValueAvg => fresh.observe(0, 0, group.clone(), Some("499".into())),
            _ => fresh.observe(0, 0, group.clone(), Some("1".into())),
        };
        assert!(early.is_none(), "{rel}");
    }
}

#[test]
fn filter_examples_select_what_they_name() {
    let SigmaDoc::Filter(f) = one("filter/filter_1.yml") else {
        panic!()
    };
    assert_eq!(f.rules.len(), 2);
    let e = compile_filter(&f, &Pipeline::ecs_linux()).unwrap();
    // `User` maps to `user.name` under the built-in pipeline.
    assert!(is_true(
        &e,
        &mut EvalCtx::new(&json!({"user": {"name": "ADM_alice"}}))
    ));
    assert!(!is_true(
        &e,
        &mut EvalCtx::new(&json!({"user": {"name": "alice"}}))
    ));
    let SigmaDoc::Filter(f) = one("filter/filter_ecs.yml") else {
        panic!()
    };
    let e = compile_filter(&f, &Pipeline::ecs_linux()).unwrap();
    assert!(is_true(
        &e,
        &mut EvalCtx::new(&json!({"dns": {"question": {"name": "www.google.com"}}}))
    ));
    assert!(!is_true(
        &e,
        &mut EvalCtx::new(&json!({"dns": {"question": {"name": "google.com"}}}))
    ));
}
