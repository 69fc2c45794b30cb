//! `unithunt hunt`: the units on this host or under a mounted image, judged with reasons.

use crate::csv_out::CsvOut;
use crate::term::escape;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_event::neutral;
use unithunt_hunt::hunt::hunt;
use unithunt_hunt::root::Root;
use unithunt_hunt::score::Finding;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuntOutput {
    Table,
    Ndjson,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct HuntArgs {
    /// The root to hunt under: a mounted image or a triage collection (every path is resolved
    /// inside it; nothing in it is run). Default: this host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// How to print findings.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: HuntOutput,
    /// Show findings of at least this severity.
    #[arg(long, value_enum, ignore_case = true, default_value = "low")]
    min_severity: Severity,
    /// Exit 1 when a finding of at least this severity is found (after `--baseline`), as
    /// `scan --fail-on-alert` does for alerts: for cron jobs and CI gates.
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// No summary on stderr (warnings and errors are still said).
    #[arg(short, long)]
    quiet: bool,
    /// Write every unit's fingerprint (the paths and bytes of what decides it) to FILE, to
    /// compare later runs against.
    #[arg(long, value_name = "FILE")]
    save_baseline: Option<PathBuf>,
    /// Report only units that are new or changed since the baseline FILE (from --save-baseline).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

/// A finding's severity, in order (`--min-severity`, `--fail-on`; case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn of(name: &str) -> Severity {
        match name {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            "low" => Severity::Low,
            _ => Severity::Info,
        }
    }
}

/// "manager\tunit" -> fingerprint, as `--save-baseline` writes it.
type Baseline = BTreeMap<String, String>;

fn baseline_key(f: &Finding) -> String {
    format!("{}\t{}", f.manager, f.unit)
}

fn read_baseline(path: &std::path::Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if doc["unithunt_hunt_baseline"] != 1 {
        return Err("not a baseline written by unithunt hunt --save-baseline".into());
    }
    serde_json::from_value(doc["units"].clone()).map_err(|e| e.to_string())
}

/// The reasons as one line, each with its weight after it: `runs from /tmp (+30); ...` (a
/// leading `+30` would read as a formula to a spreadsheet, and the reason is what one reads).
fn reasons_text(f: &Finding) -> String {
    f.reasons
        .iter()
        .map(|r| format!("{} (+{})", r.text, r.weight))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A finding as a JSON document (NDJSON and JSON output), with its baseline status if any.
fn finding_doc(f: &Finding, status: &str) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "manager": f.manager,
        "unit": f.unit,
        "fragment": f.fragment,
        "dropins": f.dropins,
        "wanted_by": f.wanted_by,
        "owner": f.owner,
        "score": f.score(),
        "severity": f.severity(),
        "reasons": f.reasons.iter().map(|r| serde_json::json!({"weight": r.weight, "reason": r.text})).collect::<Vec<_>>(),
        "exec": f.exec,
        "fingerprint": f.fingerprint,
    });
    if !status.is_empty() {
        doc["baseline"] = status.into();
    }
    doc
}

/// The findings shown, in the format asked for (terminal and CSV text neutralised).
fn print_findings(
    args: &HuntArgs,
    shown: &[&Finding],
    status_of: &dyn Fn(&Finding) -> &'static str,
) {
    match args.output {
        HuntOutput::Ndjson => {
            for f in shown {
                println!(
                    "{}",
                    neutral::to_string(&finding_doc(f, status_of(f))).unwrap_or_default()
                );
            }
        }
        HuntOutput::Json => {
            let all: Vec<serde_json::Value> =
                shown.iter().map(|f| finding_doc(f, status_of(f))).collect();
            println!("{}", neutral::to_string(&all).unwrap_or_default());
        }
        HuntOutput::Csv => {
            let mut w = CsvOut::new(std::io::stdout());
            let _ = w.write_row([
                "severity",
                "score",
                "baseline",
                "manager",
                "unit",
                "owner",
                "enabled_by",
                "fragment",
                "dropins",
                "reasons",
                "exec",
            ]);
            for f in shown {
                let _ = w.write_row([
                    f.severity().to_string(),
                    f.score().to_string(),
                    status_of(f).to_string(),
                    f.manager.clone(),
                    f.unit.clone(),
                    f.owner.clone(),
                    f.wanted_by.join(" "),
                    f.fragment.clone(),
                    f.dropins.join(" "),
                    reasons_text(f),
                    f.exec.join(" | "),
                ]);
            }
            let _ = w.flush();
        }
        HuntOutput::Table => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
            unithunt_output::term::fit(&mut table);
            let colour = unithunt_output::term::colour();
            let mut header = vec!["severity", "score"];
            if args.baseline.is_some() {
                header.push("baseline");
            }
            header.extend(["manager", "unit", "owner", "enabled by", "reasons"]);
            table.set_header(header);
            for f in shown {
                let mut row = vec![
                    unithunt_output::term::severity_cell(f.severity(), colour),
                    comfy_table::Cell::new(f.score()),
                ];
                if args.baseline.is_some() {
                    row.push(comfy_table::Cell::new(status_of(f)));
                }
                row.extend(
                    [
                        escape(&f.manager),
                        escape(&f.unit),
                        escape(&f.owner),
                        escape(&f.wanted_by.join(", ")),
                        escape(&reasons_text(f)),
                    ]
                    .map(comfy_table::Cell::new),
                );
                table.add_row(row);
            }
            if shown.is_empty() {
                // Said on stdout too: the no-argument run's hunt section is not left empty.
                println!(
                    "no finding of {} severity or above",
                    format!("{:?}", args.min_severity).to_lowercase()
                );
            } else {
                println!("{table}");
            }
        }
    }
}

pub fn run(args: HuntArgs) -> ExitCode {
    let started = std::time::Instant::now();
    if !args.root.is_dir() {
        eprintln!(
            "error: {}: not a directory",
            escape(&args.root.to_string_lossy())
        );
        return ExitCode::from(2);
    }
    let root = Root::new(&args.root);
    let report = hunt(&root);
    let mut findings: Vec<Finding> = report.findings;
    for problem in &report.problems {
        eprintln!("warning: package database: {}", escape(problem));
    }
    for refused in &report.refused {
        eprintln!("warning: {}", escape(refused));
    }
    findings.sort_by(|a, b| b.score().cmp(&a.score()).then(a.unit.cmp(&b.unit)));
    let total = findings.len();
    if let Some(path) = &args.save_baseline {
        let units: Baseline = findings
            .iter()
            .map(|f| (baseline_key(f), f.fingerprint.clone()))
            .collect();
        let doc = serde_json::json!({"unithunt_hunt_baseline": 1, "units": units});
        if let Err(e) = std::fs::write(
            path,
            neutral::to_string_pretty(&doc).unwrap_or_default() + "\n",
        ) {
            eprintln!("error: {}: {e}", escape(&path.to_string_lossy()));
            return ExitCode::from(2);
        }
    }
    // With a baseline: only what is new or changed since, each marked so.
    let mut status: HashMap<String, &'static str> = HashMap::new();
    if let Some(path) = &args.baseline {
        let base = match read_baseline(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {}", escape(&path.to_string_lossy()), escape(&e));
                return ExitCode::from(2);
            }
        };
        for f in &findings {
            match base.get(&baseline_key(f)) {
                None => {
                    status.insert(baseline_key(f), "new");
                }
                Some(p) if *p != f.fingerprint => {
                    status.insert(baseline_key(f), "changed");
                }
                Some(_) => {}
            }
        }
        findings.retain(|f| status.contains_key(&baseline_key(f)));
    }
    let status_of =
        |f: &Finding| -> &'static str { status.get(&baseline_key(f)).copied().unwrap_or("") };
    let min = args.min_severity;
    let shown: Vec<&Finding> = findings
        .iter()
        .filter(|f| Severity::of(f.severity()) >= min)
        .collect();
    print_findings(&args, &shown, &status_of);
    let count = |s: &str| findings.iter().filter(|f| f.severity() == s).count();
    let scope = if args.baseline.is_some() {
        format!("{} new or changed since the baseline, ", findings.len())
    } else {
        String::new()
    };
    if !args.quiet {
        eprintln!(
            "unithunt hunt: {total} unit(s) and generator(s) under {} (system and user managers), {scope}{} shown; critical {}, high {}, medium {}, low {}; package database: {}; accounts: {}; {:.2}s",
            escape(&args.root.to_string_lossy()),
            shown.len(),
            count("critical"),
            count("high"),
            count("medium"),
            count("low"),
            report.databases,
            escape(&report.accounts_from),
            started.elapsed().as_secs_f64()
        );
    }
    match args.fail_on {
        Some(at) if findings.iter().any(|f| Severity::of(f.severity()) >= at) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
