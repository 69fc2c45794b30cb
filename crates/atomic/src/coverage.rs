//! The coverage matrix (`unithunt rules coverage`): every test and technique, in every input
//! format, against every rule.

use crate::catalogue::{techniques, tests};
use crate::recording::*;
use unithunt_readers::Format;

pub(crate) struct CoverageRow {
    test: String,
    malicious: bool,
    source: Format,
    events: Vec<serde_json::Value>,
}

pub(crate) fn coverage_rows() -> Vec<CoverageRow> {
    let mut rows = Vec::new();
    for t in tests() {
        let window = window_of(&t.recorded_as);
        for source in SOURCES {
            let events: Vec<serde_json::Value> = match source {
                Format::Auditd => to_ecs(
                    source,
                    recorded_lines(&t.recorded_as).join("\n").into_bytes(),
                ),
                Format::Laurel => to_ecs(source, LAUREL.as_bytes().to_vec()),
                Format::Sysmon => to_ecs(source, SYSMON.as_bytes().to_vec()),
                Format::DefenderCsv => to_ecs(source, MDE_CSV.as_bytes().to_vec()),
                Format::DefenderJson => to_ecs(source, MDE_JSON.as_bytes().to_vec()),
                Format::Ecs => {
                    let prefixes: Vec<String> = match t.id.as_str() {
                        "B1" => [
                            "B-apt",
                            "B-dpkg",
                            "B-postinst",
                            "B-dsh",
                            "B-trigger",
                            "B-unit",
                        ]
                        .map(String::from)
                        .to_vec(),
                        "B2" => vec!["B-admin".into()],
                        id => vec![format!("T{id}-")],
                    };
                    fixture_events(&prefixes.iter().map(String::as_str).collect::<Vec<_>>())
                }
            };
            let events = match source {
                // Whole renderings: the test's time span.
                Format::Laurel | Format::Sysmon | Format::DefenderCsv | Format::DefenderJson => {
                    events
                        .into_iter()
                        .filter(|e| event_ms(e).is_some_and(|t| t >= window.0 && t < window.1))
                        .collect()
                }
                _ => events,
            };
            rows.push(CoverageRow {
                test: t.id.to_string(),
                malicious: t.malicious,
                source,
                events,
            });
        }
    }
    // The Elastic Defend fixtures' other benign twins: configuration management and cron.
    for (name, prefix) in [
        ("cron", "B-cron"),
        ("Ansible", "B-ansible"),
        ("Puppet", "B-puppet"),
    ] {
        rows.push(CoverageRow {
            test: format!("B {name}"),
            malicious: false,
            source: Format::Ecs,
            events: fixture_events(&[prefix]),
        });
    }
    rows
}

/// Elastic Defend fixture events whose `labels.fixture_id` starts with one of `prefixes`.
pub(crate) fn fixture_events(prefixes: &[&str]) -> Vec<serde_json::Value> {
    DEFEND_TESTS
        .lines()
        .chain(DEFEND_BENIGN.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["labels"]["fixture_id"]
                .as_str()
                .is_some_and(|id| prefixes.iter().any(|p| id.starts_with(p)))
        })
        .collect()
}

/// The technique recording's lines of one technique.
pub(crate) fn technique_lines(id: &str) -> Vec<&'static str> {
    marked_lines(TECHNIQUE_RECORDING, "UNITHUNT-TECHNIQUE", id)
}

/// One technique's events in one format, as unithunt reads them.
pub(crate) fn technique_events(id: &str, source: Format) -> Vec<serde_json::Value> {
    // The renderings' record ids (LAUREL's `ID`, Sysmon's `EventRecordID`, Defender's
    // `ReportId`) are the audit serials: the technique's events lie between its marker's serial
    // and the next marker's (the audit clock is too coarse to split them by time).
    let lines = technique_lines(id);
    let (from, to) = (
        lines.first().and_then(|l| serial(l)).unwrap_or(0),
        lines.last().and_then(|l| serial(l)).unwrap_or(0),
    );
    let whole = |text: &str| {
        to_ecs(source, text.as_bytes().to_vec())
            .into_iter()
            .filter(|e| record_serial(e).is_some_and(|s| s >= from && s <= to))
            .collect()
    };
    match source {
        Format::Auditd => to_ecs(source, technique_lines(id).join("\n").into_bytes()),
        Format::Laurel => whole(TECH_LAUREL),
        Format::Sysmon => whole(TECH_SYSMON),
        Format::DefenderCsv => whole(TECH_MDE_CSV),
        Format::DefenderJson => whole(TECH_MDE_JSON),
        Format::Ecs => TECH_DEFEND
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["labels"]["fixture_id"] == id)
            .collect(),
    }
}

/// The audit serial an event of a technique rendering carries: `event.sequence` (auditd, LAUREL)
/// or the record id the rendering was given (`event.id`).
pub(crate) fn record_serial(e: &serde_json::Value) -> Option<u64> {
    e["event"]["sequence"].as_u64().or_else(|| {
        let id = e["event"]["id"].as_str()?;
        id.rsplit(':').next()?.parse().ok()
    })
}

/// Why a format cannot show a technique (None: it can, and the technique's rule must alert on
/// it). Each reason is the format's documented event types; the coverage test checks that
/// the rule indeed stays quiet there, so a reader improving on this is noticed.
pub(crate) fn unobservable(id: &str, source: Format) -> Option<&'static str> {
    const SYSMON_WRITES: &str =
        "Sysmon for Linux raises FileCreate (EventID 11) on creation only: \
                                 no event for a rename, a link or a write to an existing file";
    const NO_LINK_EVENT: &str = "no documented file event for a hard or symbolic link";
    match (source, id) {
        (
            Format::Sysmon,
            "rename-into-place" | "in-place-edit" | "append" | "hard-link" | "symbolic-link",
        ) => Some(SYSMON_WRITES),
        (
            Format::DefenderCsv | Format::DefenderJson | Format::Ecs,
            "hard-link" | "symbolic-link",
        ) => Some(NO_LINK_EVENT),
        (Format::Ecs, "ancestry") => Some(
            "an Elastic Defend event names only the direct parent (`process.parent.*`); the \
             ancestors are entity ids (`process.Ext.ancestry`), which unithunt does not join on \
             ECS input (it does for auditd, LAUREL and Sysmon, from their own process events; \
             Defender names two ancestors)",
        ),
        _ => None,
    }
}

/// The technique table of the coverage document.
pub(crate) fn technique_markdown(rules: &[&unithunt_rules::Rule]) -> String {
    use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
    let mut md = String::from(
        "\n## Every technique of the pack's scope, recorded\n\n\
         Each technique was played for real under auditd (Debian 12, log_format=ENRICHED, the audit rules \
         of `examples/atomic/README.md`) and recorded in `examples/atomic/techniques.log`; a row is that \
         technique's records, scanned as raw audit (ECS is what unithunt maps them to, so the same \
         events). Columns as above; *must* is the rule the technique is covered by.\n\n\
         | technique | what was done | must | events |",
    );
    for i in 0..rules.len() {
        md.push_str(&format!(" {} |", i + 1));
    }
    md.push_str("\n|---|---|---|---:|");
    for _ in 0..rules.len() {
        md.push_str(":---:|");
    }
    md.push('\n');
    for tq in techniques() {
        let (id, what, must) = (&tq.id, &tq.what, &tq.rule);
        let events = to_ecs(Format::Auditd, technique_lines(id).join("\n").into_bytes());
        let must_col = rules
            .iter()
            .position(|r| r.meta.name == *must)
            .map_or("?".to_string(), |i| (i + 1).to_string());
        md.push_str(&format!(
            "| {id} | {what} | {must_col} | {} |",
            events.len()
        ));
        let example = RuleExample {
            expect: Expect::Alert,
            why: String::new(),
            events,
        };
        for r in rules {
            let fired = alerts_on(r, &example) == Some(true);
            md.push_str(if fired { " **A** |" } else { " · |" });
        }
        md.push('\n');
    }
    md.push_str(
        "\n### Every technique in every format\n\n\
         The same recording rendered in each product's format (`examples/atomic/*/techniques.*`, \
         derived by `examples/atomic/derive-from-recording.py`: every value one the kernel reported, \
         each format holding only the event types it documents). A cell says whether the \
         technique's rule (*must*) alerts on that rendering: **A** it does, `n/a` the format has no \
         event for the technique (the reason below; the rule is checked to stay quiet there), \
         **MISSED** it does not though it could.\n\n\
         | technique | must |",
    );
    let formats = SOURCES;
    for f in formats {
        md.push_str(&format!(" {} |", label(f)));
    }
    md.push_str("\n|---|---|");
    for _ in formats {
        md.push_str(":---:|");
    }
    md.push('\n');
    let mut reasons: Vec<&str> = Vec::new();
    for tq in techniques() {
        let (id, must) = (&tq.id, &tq.rule);
        let Some(rule) = rules.iter().find(|r| r.meta.name == *must) else {
            continue;
        };
        let must_col = rules.iter().position(|r| r.meta.name == *must).unwrap_or(0) + 1;
        md.push_str(&format!("| {id} | {must_col} |"));
        for f in formats {
            let cell = match unobservable(id, f) {
                Some(reason) => {
                    let n = match reasons.iter().position(|r| *r == reason) {
                        Some(n) => n + 1,
                        None => {
                            reasons.push(reason);
                            reasons.len()
                        }
                    };
                    format!("n/a ({n})")
                }
                None => {
                    let example = RuleExample {
                        expect: Expect::Alert,
                        why: String::new(),
                        events: technique_events(id, f),
                    };
                    if alerts_on(rule, &example) == Some(true) {
                        "**A**".to_string()
                    } else {
                        "**MISSED**".to_string()
                    }
                }
            };
            md.push_str(&format!(" {cell} |"));
        }
        md.push('\n');
    }
    md.push('\n');
    for (n, reason) in reasons.iter().enumerate() {
        md.push_str(&format!("({}) {reason}.\n", n + 1));
    }
    md.push_str(
        "\nOnly auditd was recorded live; the other renderings follow each product's published \
         schema, not a live agent.\n",
    );
    md
}

/// The coverage matrix as Markdown: test × input format × rule (`unithunt rules coverage`).
pub fn coverage_markdown(rules: &[unithunt_rules::Rule]) -> String {
    use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
    let rules: Vec<&unithunt_rules::Rule> = rules.iter().filter(|r| r.query.is_some()).collect();
    let reference = |r: &unithunt_rules::Rule| r.meta.tags.iter().any(|t| t == "Reference");
    let mut md = String::from(
        "# Coverage: adversary tests × input formats × rules\n\n\
         Generated by `unithunt rules coverage > docs/coverage.md` (CI fails when it is out of date). \
         Each cell says whether the rule alerts on the test's telemetry in that input format: **A** it \
         alerts, `·` it does not, `n/a` the format holds no event of the test. On benign rows an **A** is \
         a false positive. The telemetry: the real auditd recording of the tests \
         (`examples/atomic/dev-enriched.log`, scenarios D1–D4, B1, B2; test 3 there is \
         `rsyslogd.service`), its LAUREL, Sysmon for Linux and Defender renderings \
         (`examples/atomic/`, same times), and Elastic Defend shaped events (`examples/atomic/ecs/`, \
         hand-built after the recording's process trees, with more benign twins).\n\n",
    );
    md.push_str("Rules (columns):\n\n");
    for (i, r) in rules.iter().enumerate() {
        let tag = if reference(r) {
            " (the seed rule, `Reference`)"
        } else {
            ""
        };
        md.push_str(&format!("{}. {}{tag}\n", i + 1, r.meta.name));
    }
    md.push_str("\n| test | format | events |");
    for i in 0..rules.len() {
        md.push_str(&format!(" {} |", i + 1));
    }
    md.push_str(" pack without the seed |\n|---|---|---:|");
    for _ in 0..=rules.len() {
        md.push_str(":---:|");
    }
    md.push('\n');
    for row in coverage_rows() {
        let example = RuleExample {
            expect: Expect::Alert,
            why: String::new(),
            events: row.events.clone(),
        };
        md.push_str(&format!(
            "| {}{} | {} | {} |",
            row.test,
            if row.malicious { "" } else { " (benign)" },
            label(row.source),
            row.events.len()
        ));
        let mut pack = false;
        for r in &rules {
            let cell = if row.events.is_empty() {
                "n/a"
            } else if alerts_on(r, &example) == Some(true) {
                pack |= !reference(r);
                "**A**"
            } else {
                "·"
            };
            md.push_str(&format!(" {cell} |"));
        }
        let verdict = match (row.events.is_empty(), pack, row.malicious) {
            (true, _, _) => "n/a",
            (false, true, true) => "detected",
            (false, false, true) => "**MISSED**",
            (false, true, false) => "**false positive**",
            (false, false, false) => "quiet",
        };
        md.push_str(&format!(" {verdict} |\n"));
    }
    md.push_str(&technique_markdown(&rules));
    md
}
