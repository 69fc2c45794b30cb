//! `unithunt` with no arguments (until host hunting lands): run the seed rule, verbatim, over the
//! seed page's four adversary tests and benign activity rendered as Elastic Defend (ECS) events, and
//! say what it catches and what it misses.

use crate::term::escape;
use serde_json::Value as Json;
use std::process::ExitCode;
use std::sync::Arc;
use unithunt_engine::{Output, RunOptions, Runner};
use unithunt_eql::{compile, EqlOptions};
use unithunt_event::{lookup_one, FieldPath};
use unithunt_readers::{read_events, ReadStats, Source};

pub const SEED_RULE: &str =
    include_str!("../../../rules/elastic/persistence_systemd_service_seed.toml");
const EVENTS: &str = include_str!("../../../examples/atomic-tests.ecs.ndjson");

/// The seed rule's query, read from its rule file.
pub fn seed_query() -> Result<(String, String), String> {
    let doc: toml::Table = SEED_RULE
        .parse()
        .map_err(|e| format!("seed rule file: {e}"))?;
    let rule = doc
        .get("rule")
        .and_then(|r| r.as_table())
        .ok_or("seed rule file has no [rule]")?;
    let q = rule
        .get("query")
        .and_then(|q| q.as_str())
        .ok_or("seed rule has no query")?;
    let name = rule
        .get("name")
        .and_then(|q| q.as_str())
        .unwrap_or("seed rule");
    Ok((q.to_string(), name.to_string()))
}

pub fn run() -> ExitCode {
    let (query, name) = match seed_query() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let q = match compile(&query, &EqlOptions::elasticsearch()) {
        Ok(q) => q,
        Err(e) => {
            eprint!("{}", e.render(&query, "seed rule"));
            return ExitCode::from(2);
        }
    };
    let mut runner = Runner::new(&q, RunOptions::default());
    let mut stats = ReadStats::default();
    let mut events = Vec::new();
    let _ = read_events(
        Source::from_bytes(
            "examples/atomic-tests.ecs.ndjson",
            EVENTS.as_bytes().to_vec(),
        ),
        &mut |_| true,
        &mut |d, _| events.push(Arc::new(d)),
        &mut stats,
    );
    for e in &events {
        let mask = runner.evaluate(e);
        runner.advance(e.clone(), 0, mask);
    }
    let hits: Vec<Arc<Json>> = runner
        .finish()
        .outputs
        .into_iter()
        .flat_map(|o| match o {
            Output::Event(e) => vec![e],
            Output::Sequence { events, .. } => events.into_iter().flatten().collect(),
        })
        .collect();
    let get = |e: &Json, p: &str| {
        lookup_one(e, &FieldPath::parse(p))
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    println!(
        "unithunt self-check: the seed rule \"{name}\" (verbatim EQL, Elasticsearch semantics)"
    );
    println!("over the seed page's adversary tests rendered as Elastic Defend events:\n");
    for e in &events {
        let hit = hits.iter().any(|h| Arc::ptr_eq(h, e));
        let what = if get(e, "file.path").is_empty() {
            format!(
                "{} ran `{}`",
                get(e, "process.parent.name"),
                get(e, "process.command_line")
            )
        } else {
            format!("{} wrote {}", get(e, "process.name"), get(e, "file.path"))
        };
        println!(
            "  {}  {:<44} {}",
            if hit { "ALERT" } else { "  -  " },
            escape(&get(e, "labels.scenario")),
            escape(&what)
        );
    }
    println!("\n{} of {} events alert. The generator (Test 4) and the unit it writes under /run/systemd/generator/", hits.len(), events.len());
    println!("are not seen by the seed rule; the rule pack closes that gap (\"Systemd Generator or Environment");
    println!("Generator Written\" and \"Systemd Unit or Drop-in Written Outside Package Management\" see them):");
    println!("`unithunt scan FILE` runs the pack, `unithunt rules list` lists it.");
    println!("\nNext: `unithunt eql 'QUERY' events.ndjson` runs any Elasticsearch EQL over your ECS exports;");
    println!("`unithunt eql --help` lists the _eql/search parameters.");
    ExitCode::SUCCESS
}
