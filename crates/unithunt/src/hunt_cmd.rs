//! `unithunt hunt`: the units on this host or under a mounted image, judged with reasons.

use crate::term::escape;
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_hunt::hunt::hunt;
use unithunt_hunt::root::Root;
use unithunt_hunt::score::Finding;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuntOutput {
    Table,
    Ndjson,
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
    /// Show findings of at least this severity (info, low, medium, high, critical).
    #[arg(long, default_value = "low")]
    min_severity: String,
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
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
    let (mut findings, has_db): (Vec<Finding>, bool) = hunt(&root);
    findings.sort_by(|a, b| b.score().cmp(&a.score()).then(a.unit.cmp(&b.unit)));
    let min = rank(&args.min_severity);
    let shown: Vec<&Finding> = findings
        .iter()
        .filter(|f| rank(f.severity()) >= min)
        .collect();
    match args.output {
        HuntOutput::Ndjson => {
            for f in &shown {
                let doc = serde_json::json!({
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
                });
                println!("{doc}");
            }
        }
        HuntOutput::Table => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
            table.set_header([
                "severity",
                "score",
                "unit",
                "owner",
                "enabled by",
                "reasons",
            ]);
            for f in &shown {
                table.add_row([
                    f.severity().to_string(),
                    f.score().to_string(),
                    escape(&f.manager),
                    escape(&f.unit),
                    escape(&f.owner),
                    escape(&f.wanted_by.join(", ")),
                    escape(
                        &f.reasons
                            .iter()
                            .map(|r| format!("+{} {}", r.weight, r.text))
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                ]);
            }
            if !shown.is_empty() {
                println!("{table}");
            }
        }
    }
    let count = |s: &str| findings.iter().filter(|f| f.severity() == s).count();
    eprintln!(
        "unithunt hunt: {} unit(s) and generator(s) under {} (system and user managers), {} shown; critical {}, high {}, medium {}, low {}; package database: {}; {:.2}s",
        findings.len(),
        escape(&args.root.to_string_lossy()),
        shown.len(),
        count("critical"),
        count("high"),
        count("medium"),
        count("low"),
        if has_db { "dpkg" } else { "none found" },
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
