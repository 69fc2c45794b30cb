//! Detection semantics per the Sigma specification, one case per behaviour: a detection, an event,
//! and whether it matches. Field names are used as written (no log source mapping applies).

use serde_json::{json, Value as Json};
use unithunt_engine::{is_true, EvalCtx};
use unithunt_sigma::{compile, load_documents, Pipeline, SigmaDoc};

fn rule(detection: &str) -> Result<unithunt_engine::Expr, String> {
    let text = format!("title: t\nlogsource:\n  product: test\ndetection:\n{detection}\n");
    let docs = load_documents(&text, "t.yml").map_err(|e| e.to_string())?;
    let SigmaDoc::Rule(r) = &docs[0] else {
        panic!()
    };
    compile(r, &Pipeline::ecs_linux()).map_err(|e| e.to_string())
}

fn check(detection: &str, cases: &[(Json, bool)]) {
    let e = rule(detection).unwrap_or_else(|e| panic!("{detection}: {e}"));
    for (event, want) in cases {
        assert_eq!(
            is_true(&e, &mut EvalCtx::new(event)),
            *want,
            "{detection}\non {event}"
        );
    }
}

#[test]
fn maps_lists_and_case() {
    check(
        "  s:\n    a: Foo\n    b: [x, y]\n  condition: s",
        &[
            (json!({"a": "fOO", "b": "Y"}), true),
            (json!({"a": "foo", "b": ["z", "x"]}), true),
            (json!({"a": "foo", "b": "z"}), false),
            (json!({"b": "x"}), false),
        ],
    );
    check(
        "  s:\n    - a: 1\n    - b: 2\n  condition: s",
        &[
            (json!({"a": 1}), true),
            (json!({"b": "2"}), true),
            (json!({"a": 2}), false),
        ],
    );
}

#[test]
fn wildcards_and_escapes() {
    check(
        "  s:\n    p: 'C:\\Win*\\x?.exe'\n  condition: s",
        &[
            (json!({"p": "c:\\windows\\x1.exe"}), true),
            (json!({"p": "c:\\windows\\x12.exe"}), false),
        ],
    );
    check(
        "  s:\n    p: 'a\\*b'\n  condition: s",
        &[(json!({"p": "a*b"}), true), (json!({"p": "aXb"}), false)],
    );
}

#[test]
fn null_empty_and_exists() {
    check(
        "  s:\n    f: null\n  condition: s",
        &[
            (json!({}), true),
            (json!({"f": null}), true),
            (json!({"f": "x"}), false),
        ],
    );
    check(
        "  s:\n    f: ''\n  condition: s",
        &[(json!({"f": ""}), true), (json!({}), false)],
    );
    check(
        "  s:\n    f|exists: true\n  condition: s",
        &[(json!({"f": ""}), true), (json!({}), false)],
    );
    check(
        "  s:\n    f|exists: false\n  condition: s",
        &[(json!({"f": 1}), false), (json!({}), true)],
    );
}

#[test]
fn string_modifiers() {
    check(
        "  s:\n    c|contains: mid\n    b|startswith: pre\n    e|endswith: suf\n  condition: s",
        &[
            (json!({"c": "xMIDx", "b": "PREfix", "e": "thesuf"}), true),
            (json!({"c": "xmix", "b": "prefix", "e": "thesuf"}), false),
        ],
    );
    check(
        "  s:\n    c|contains|all: [a1, b2]\n  condition: s",
        &[
            (json!({"c": "b2 then a1"}), true),
            (json!({"c": "only a1"}), false),
        ],
    );
    check(
        "  s:\n    c|cased: Foo\n  condition: s",
        &[(json!({"c": "Foo"}), true), (json!({"c": "foo"}), false)],
    );
    check(
        "  s:\n    c|neq: [a, b]\n  condition: s",
        &[
            (json!({"c": "c"}), true),
            (json!({"c": "A"}), false),
            (json!({}), true),
        ],
    );
    check(
        "  s:\n    c|windash|contains: ' -enc '\n  condition: s",
        &[
            (json!({"c": "ps /enc x"}), true),
            (json!({"c": "ps \u{2013}enc x"}), true),
            (json!({"c": "ps enc x"}), false),
        ],
    );
}

#[test]
fn regular_expressions() {
    check(
        "  s:\n    c|re: 'ab+c'\n  condition: s",
        &[
            (json!({"c": "xxabbbcxx"}), true),
            (json!({"c": "ABC"}), false),
        ],
    );
    check(
        "  s:\n    c|re|i: '^ab+c$'\n  condition: s",
        &[(json!({"c": "ABC"}), true), (json!({"c": "xabc"}), false)],
    );
    check(
        "  s:\n    c|re: 'a.c'\n  condition: s",
        &[(json!({"c": "a\nc"}), false)],
    );
    check(
        "  s:\n    c|re|s: 'a.c'\n  condition: s",
        &[(json!({"c": "a\nc"}), true)],
    );
}

#[test]
fn encodings() {
    check(
        "  s:\n    c|base64: 'ping'\n  condition: s",
        &[(json!({"c": "cGluZw=="}), true)],
    );
    // `ping` at each offset inside a longer base64 text.
    for text in ["xping", "xxping", "ping and more"] {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::STANDARD.encode(text);
        check(
            "  s:\n    c|base64offset|contains: 'ping'\n  condition: s",
            &[(json!({"c": enc}), true)],
        );
    }
    check(
        "  s:\n    c|wide|base64offset|contains: 'cmd'\n  condition: s",
        &[
            (json!({"c": "xxYwBtAGQAxx"}), true),
            (json!({"c": "cmd"}), false),
        ],
    );
}

#[test]
fn numbers_ranges_networks_and_field_references() {
    check(
        "  s:\n    n|gt: 10\n    m|lte: 3\n  condition: s",
        &[
            (json!({"n": 11, "m": 3}), true),
            (json!({"n": 10, "m": 3}), false),
        ],
    );
    check(
        "  s:\n    ip|cidr: 10.0.0.0/8\n  condition: s",
        &[
            (json!({"ip": "10.2.3.4"}), true),
            (json!({"ip": "11.0.0.1"}), false),
        ],
    );
    check(
        "  s:\n    a|fieldref: b\n  condition: s",
        &[
            (json!({"a": "X", "b": "x"}), true),
            (json!({"a": "x", "b": "y"}), false),
        ],
    );
    check(
        "  s:\n    port: 443\n  condition: s",
        &[
            (json!({"port": 443}), true),
            (json!({"port": "443"}), true),
            (json!({"port": 4430}), false),
        ],
    );
}

#[test]
fn time_parts_compare_a_part_of_the_timestamp() {
    check(
        "  s:\n    '@timestamp|hour': 3\n  condition: s",
        &[
            (json!({"@timestamp": "2026-11-28T03:15:00Z"}), true),
            (json!({"@timestamp": 1795835700000i64}), true),
            (json!({"@timestamp": "2026-11-28T04:15:00Z"}), false),
            (json!({}), false),
        ],
    );
    check(
        "  s:\n    t|month|gte: 11\n    t|week: 48\n  condition: s",
        &[
            (json!({"t": "2026-11-28T03:15:00.123Z"}), true),
            (json!({"t": "2026-01-28T03:15:00Z"}), false),
        ],
    );
}

#[test]
fn keywords_search_the_pipelines_text_fields() {
    check(
        "  k:\n    - evil\n    - bad*thing\n  condition: k",
        &[
            (json!({"message": "an EVIL message"}), true),
            (
                json!({"process": {"command_line": "a bad big thing"}}),
                true,
            ),
            (json!({"user": {"name": "evil"}}), false),
        ],
    );
    check(
        "  k:\n    '|all': [one, two]\n  condition: k",
        &[
            (json!({"message": "two and one"}), true),
            (json!({"message": "one"}), false),
        ],
    );
}

#[test]
fn what_cannot_be_honoured_is_refused() {
    for (d, why) in [
        (
            "  s:\n    c|expand: '%Admins%'\n  condition: s",
            "placeholders",
        ),
        ("  s:\n    c|nosuch: x\n  condition: s", "unknown modifier"),
        ("  s:\n    c: [a, null]\n  condition: s", "null"),
        (
            "  s:\n    c: x\n  condition: s | count() > 3",
            "deprecated aggregation",
        ),
    ] {
        let e = rule(d).unwrap_err();
        assert!(e.contains(why), "{d}: {e}");
    }
}

#[test]
fn expand_takes_placeholder_values_from_the_pipeline() {
    let pipeline = Pipeline::parse("name: p\nplaceholders:\n  Admins: [root, 'adm_*']\n").unwrap();
    let text = "title: t\nlogsource: {product: test}\ndetection:\n  s:\n    user|expand: '%Admins%'\n    note|expand: '100\\%'\n  condition: s\n";
    let docs = load_documents(text, "t.yml").unwrap();
    let SigmaDoc::Rule(r) = &docs[0] else {
        panic!()
    };
    let e = compile(r, &pipeline).unwrap();
    for (event, want) in [
        (json!({"user": "ROOT", "note": "100%"}), true),
        (json!({"user": "adm_bob", "note": "100%"}), true),
        (json!({"user": "bob", "note": "100%"}), false),
    ] {
        assert_eq!(is_true(&e, &mut EvalCtx::new(&event)), want, "{event}");
    }
}
