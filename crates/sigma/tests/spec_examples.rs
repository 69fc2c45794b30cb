//! Every example of the Sigma specification's `tests/schema/` loads, and what it says holds: the
//! rules match the events they describe (case-insensitively, as Sigma values do) and not others,
//! the correlations keep their type, rules, grouping and time span, and the filters their rules
//! and selection. Read from `../shared/peer/sigma-spec/` (not copied).

use serde_json::json;
use std::path::PathBuf;
use unithunt_engine::{is_true, EvalCtx};
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
