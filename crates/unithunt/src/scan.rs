//! `unithunt scan [PATH...]`: run the rule pack over telemetry and print Elastic-style alerts.
//! The scan itself is `unithunt_pipeline::batch`; this file is its command line, its inputs and
//! its summary.

use crate::input_args::InputFormat;
use crate::term::escape;
use clap::Args;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use unithunt_event::FieldPath;
use unithunt_output::OutputFormat;
use unithunt_pipeline::batch::{BatchScan, Counts, ScanOptions, ScanReport, BLOCK};
use unithunt_readers::{Format, Skipped};
use unithunt_rules::RuleSet;

#[derive(Args)]
pub struct ScanArgs {
    /// Files or directories (searched recursively); `-` is standard input. gzip and zstd are
    /// decompressed transparently.
    paths: Vec<PathBuf>,
    #[command(flatten)]
    rule_args: crate::rule_args::RuleArgs,
    /// How to print alerts.
    #[arg(long, short = 'o', default_value = "table", value_parser = crate::input_args::output_format_parser())]
    output: OutputFormat,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Exit with status 1 when any alert was raised.
    #[arg(long)]
    fail_on_alert: bool,
    /// List the rules that would run, and those that cannot, then exit.
    #[arg(long)]
    list_rules: bool,
    /// No summary and no progress bar on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// Field holding the event time.
    #[arg(long, default_value = "@timestamp")]
    timestamp_field: String,
    /// Cap on pending partial sequences per sequence rule, on open sample keys, and on open groups
    /// per Sigma correlation; past it the oldest are evicted (and reported). Bounds memory on long
    /// inputs.
    #[arg(long, default_value_t = unithunt_detect::DEFAULT_MAX_PENDING)]
    max_pending: usize,
    /// Input format; `auto` sniffs each file (audit logs start with `type=` or `node=`) and the
    /// summary says what it chose for files that are not ECS.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// The audit logs are this host's own: parents that started before the log and still run are
    /// looked up in /proc (only when they provably started before the event that names them).
    #[arg(long)]
    this_host: bool,
}

/// Per-input-line accounting, merged across blocks.
pub fn run(args: ScanArgs) -> ExitCode {
    let started = Instant::now();
    let loaded = args.rule_args.load_lenient();
    eprint!("{}{}", loaded.rule_errors, loaded.fatal);
    let rules_failed = !loaded.rule_errors.is_empty();
    let usage_error = !loaded.fatal.is_empty() || (rules_failed && args.rule_args.strict);
    let pack = if loaded.fatal.is_empty() {
        loaded.pack
    } else {
        // Listing the rules still shows what loaded.
        crate::rule_args::RuleArgs {
            tuning: Vec::new(),
            ..args.rule_args.clone()
        }
        .load_lenient()
        .pack
    };
    let set = Arc::new(RuleSet::new(pack));
    if args.list_rules {
        return list_rules(&set, usage_error || rules_failed);
    }
    if usage_error {
        return ExitCode::from(2);
    }
    if rules_failed && !args.quiet {
        eprintln!(
            "warning: some rule files did not load (above); the {} rule(s) that did run, and the exit status will be 2",
            set.rules.len()
        );
    }
    if let Some(n) = args.threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let mut io_errors = Vec::new();
    let mut not_read = Vec::new();
    let paths = if args.paths.is_empty() {
        if std::io::stdin().is_terminal() {
            eprintln!(
                "error: no input: give files or directories, or pipe NDJSON into `unithunt scan -`"
            );
            return ExitCode::from(2);
        }
        vec![PathBuf::from("-")]
    } else {
        let (files, errors) = crate::input_args::expand(&args.paths, &mut not_read);
        // Nothing to read at all: say why and stop, before a table that would say "No alerts".
        if files.is_empty() && !errors.is_empty() {
            for (p, e) in &errors {
                eprintln!("error: {}: {e}", escape(&p.to_string_lossy()));
            }
            return ExitCode::from(2);
        }
        io_errors.extend(
            errors
                .into_iter()
                .map(|(p, e)| format!("{}: {e}", escape(&p.to_string_lossy()))),
        );
        files
    };
    let options = ScanOptions {
        output: args.output,
        max_pending: args.max_pending,
        timestamp_field: FieldPath::parse(&args.timestamp_field),
        this_host: args.this_host,
    };
    let (mut scan, warnings) = BatchScan::new(&set, options);
    if !args.quiet {
        for w in &warnings {
            eprintln!("warning: {}", escape(w));
        }
    }
    for e in io_errors {
        scan.io_error(e);
    }
    let total_bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = crate::progress::Progress::new(
        !args.quiet && std::io::stderr().is_terminal() && total_bytes > 64 << 20,
        total_bytes,
    );
    for path in &paths {
        let shown = escape(&path.to_string_lossy());
        let opened = crate::input_args::for_each_input(
            path,
            args.input_format.0,
            BLOCK,
            &mut not_read,
            &mut |input| match input {
                Ok(input) => scan.scan(input, &|at| progress.set(at)),
                Err(e) => scan.io_error(format!("{shown}: {e}")),
            },
        );
        if let Err(e) = opened {
            scan.io_error(format!("{shown}: {e}"));
        }
        progress.next_file(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    }
    progress.finish();
    let status = finish(&args, &set, scan.finish(), started);
    if !args.quiet {
        crate::input_args::say_not_read(&not_read);
    }
    if rules_failed {
        ExitCode::from(2)
    } else {
        status
    }
}

/// The end of a scan: the summary and warnings go to stderr; the exit status.
fn finish(args: &ScanArgs, set: &RuleSet, report: ScanReport, started: Instant) -> ExitCode {
    if !args.quiet {
        for &(rule, n) in &report.evicted {
            eprintln!(
                "warning: rule {}: {n} pending sequences evicted at the cap",
                escape(&set.rules[rule].meta.name),
            );
        }
    }
    if report.late > 0 && !args.quiet {
        eprintln!(
            "note: {} event(s) matching sequence stages came after later events had been sequenced \
             (input not in time order); sequence results for them may differ from a fully sorted run",
            report.late
        );
    }
    let io_errors = &report.io_errors;
    if !args.quiet {
        let fired: Vec<(String, u64)> = set
            .correlations
            .iter()
            .zip(&report.correlations)
            .map(|(r, (n, _))| (r.meta.name.clone(), *n))
            .collect();
        summary(
            set,
            &report.counts,
            &report.formats,
            &report.alerts_by_rule,
            &fired,
            io_errors,
            started.elapsed().as_secs_f64(),
            report.total_alerts,
            report.building_blocks,
            args.output == OutputFormat::Table,
        );
        for (r, &(_, n)) in set.correlations.iter().zip(&report.correlations) {
            if n > 0 {
                eprintln!(
                    "warning: correlation {}: {n} group(s) evicted, with their matches, at the --max-pending cap of {} groups; alerts of those groups may be missing",
                    escape(&r.meta.name),
                    args.max_pending
                );
            }
        }
    } else {
        for e in io_errors {
            eprintln!("error: {e}");
        }
    }
    if !io_errors.is_empty() {
        ExitCode::from(2)
    } else if args.fail_on_alert && report.total_alerts > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `scan --list-rules`: what runs (and what was loaded but cannot run, and why).
fn list_rules(set: &RuleSet, usage_error: bool) -> ExitCode {
    // The table `rules list` prints, then what would not run and why.
    let correlations = set.correlations.iter().map(|r| (r, " (Sigma correlation)"));
    let rows = set.rules.iter().map(|r| (r, "")).chain(correlations);
    println!("{}", crate::rules_cmd::rule_table(rows));
    for r in &set.unsupported {
        println!(
            "# not run: {} ({}): {}",
            escape(&r.meta.name),
            escape(&r.meta.origin),
            r.unsupported.as_deref().unwrap_or("")
        );
    }
    // What loaded is listed, but a rule that did not load is still an error for scripts.
    ExitCode::from(if usage_error { 2 } else { 0 })
}

/// The first lines reported with their place (`  KIND FILE:LINE: REASON`), then how many more.
fn reported(kind: &str, first: &[Skipped], total: u64, more: &str) {
    for sk in first {
        eprintln!(
            "  {kind} {}:{}: {}",
            escape(&sk.file),
            sk.line,
            escape(&sk.reason)
        );
    }
    if total as usize > first.len() {
        eprintln!("  ... and {} more {more}", total as usize - first.len());
    }
}

#[allow(clippy::too_many_arguments)] // one line of accounting per argument; a struct would only rename them
fn summary(
    set: &RuleSet,
    c: &Counts,
    formats: &[(String, Format, bool)],
    by_rule: &HashMap<usize, u64>,
    correlations: &[(String, u64)],
    io_errors: &[String],
    secs: f64,
    total_alerts: u64,
    blocks: u64,
    table: bool,
) {
    let s = &c.stats;
    // The event alerts of building-block rules (a sequence rule's are counted by the printer).
    let rule_blocks: u64 = by_rule
        .iter()
        .filter(|(r, _)| {
            let rule = &set.rules[**r];
            rule.meta.building_block_type.is_some()
                && matches!(
                    rule.query.as_ref().map(|q| &q.kind),
                    Some(unithunt_engine::QueryKind::Events(_))
                )
        })
        .map(|(_, n)| *n)
        .sum();
    let blocks = blocks + rule_blocks;
    // One count whatever the format: alerts an analyst triages (events and sequences), and
    // separately the building-block alerts (sequence parts, building-block rules), which Elastic
    // keeps out of the alert queue and the table leaves out (documents of -o ndjson/json/csv).
    let alerts = if table {
        total_alerts
    } else {
        total_alerts.saturating_sub(blocks)
    };
    let blocks_said = match (blocks, table) {
        (0, _) => String::new(),
        (n, true) => format!(
            " (and {n} building-block alert(s), out of the table as out of Elastic's alert queue)"
        ),
        (n, false) => format!(" (and {n} building-block alert(s) among the documents)"),
    };
    let mb = s.bytes as f64 / 1e6;
    eprintln!(
        "unithunt scan: {} rule(s){}, {} file(s), {:.1} MB, {} lines: {} parsed ({} events evaluated), {} ruled out unparsed, {} skipped; {} alert(s){}; {:.2}s ({:.0} MB/s, {:.0} lines/s)",
        set.rules.len(),
        if set.correlations.is_empty() {
            String::new()
        } else {
            format!(" and {} correlation(s)", set.correlations.len())
        },
        s.files,
        mb,
        s.lines,
        c.parsed,
        s.events,
        s.filtered,
        s.skipped,
        alerts,
        blocks_said,
        secs,
        mb / secs.max(1e-9),
        s.lines as f64 / secs.max(1e-9)
    );
    if c.converted_records > 0 || !formats.is_empty() {
        eprintln!(
            "  {} source record(s) (audit, LAUREL, Sysmon, Defender) made {} event(s) (lines = records + skipped; events = parsed + ruled out)",
            c.converted_records, c.converted_events
        );
    }
    for (file, format, sniffed) in formats.iter().take(20) {
        eprintln!(
            "  {}: read as {}{}",
            escape(file),
            format.name(),
            if *sniffed { " (sniffed)" } else { "" }
        );
    }
    let mut rules: Vec<(&usize, &u64)> = by_rule.iter().collect();
    rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (r, n) in rules {
        let meta = &set.rules[*r].meta;
        let bb = if meta.building_block_type.is_some() {
            " (building block)"
        } else {
            ""
        };
        eprintln!("  {n:>8}  {}{bb}", escape(&meta.name));
    }
    for (name, n) in correlations.iter().filter(|(_, n)| *n > 0) {
        eprintln!("  {n:>8}  {} (correlation)", escape(name));
    }
    // What the tuning kept quiet: events of tuned rules (stage matches, for sequences) that
    // alerted without it.
    for (r, n) in set.suppressed() {
        eprintln!(
            "  {n:>8}  kept quiet by the tuning: {}",
            escape(&set.rules[r].meta.name)
        );
    }
    reported("skipped", &s.reported, s.skipped, "skipped lines");
    reported("warning", &c.warnings, c.warned, "warnings");
    if c.no_time > 0 {
        eprintln!(
            "  {} event(s) matched a sequence stage but had no readable timestamp",
            c.no_time
        );
    }
    for e in io_errors {
        eprintln!("error: {e}");
    }
}
