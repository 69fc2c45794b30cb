//! The `unithunt` command. Thin: argument parsing and output; the work is in the library crates.

mod atomic;
mod config;
mod convert;
mod eql_cmd;
mod host;
mod hunt_cmd;
mod input_args;
mod progress;
mod remote_args;
mod rule_args;
mod rules_cmd;
mod scan;
mod selfcheck;
mod stream;
mod watch;

// The neutralisers and printers live in `unithunt-output`; these names keep `crate::term::escape`.
use unithunt_output::{csv_out, term};

use clap::{Parser, Subcommand};

/// Events are JSON trees built and dropped by the million, on several threads: mimalloc's
/// thread-local free lists cut the allocator's share of a full-evaluation scan severalfold. Its
/// default purge delay (freed memory returned to the system after 10 ms) is kept: returning it at
/// once was tried and made threads that free what others allocated (converted audit events) spend
/// more time in the kernel than in the scan (0.80 s against 0.48 s on 200 MB, two threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// Find Linux persistence through systemd (MITRE ATT&CK T1543.002).
///
/// With no command, unithunt runs its self-check (the seed detection rule against the four
/// adversary tests of the seed page, rendered as Elastic Defend events), then scans this host's
/// audit log with the rule pack when it can read it.
#[derive(Parser)]
#[command(
    name = "unithunt",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    // A flag given twice (in the configuration file, then on the command line): the last wins.
    args_override_self = true,
    after_help = "Exit status (every command): 0 ran and found nothing to act on; 1 found something \
(an alert with `scan --fail-on-alert`, a result of `eql`, a finding at `--fail-on` of `hunt` or of \
the no-argument run, a failed test of `rules test` or `atomic verify`); 2 could not do what was \
asked (bad arguments, unreadable input or rules, a broker or sink that failed)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options from this TOML file (one table per command: `[scan]`, `[watch]`, ...; keys are
    /// the long options) instead of /etc/unithunt/config.toml and ~/.config/unithunt/config.toml.
    /// (Read before the command line is parsed: `config::apply`; here for `--help`.)
    #[arg(long, value_name = "FILE")]
    #[allow(dead_code)]
    config: Option<std::path::PathBuf>,
    /// With no command: exit 1 when the hunt of this host finds something at least this severe.
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    fail_on: Option<hunt_cmd::Severity>,
}

#[derive(Subcommand)]
enum Command {
    /// Run an EQL query over ECS NDJSON or JSON files, like Elasticsearch's `_eql/search`.
    Eql(Box<eql_cmd::EqlArgs>),
    /// Run the rule pack over ECS telemetry (NDJSON, JSON, search responses; gzip/zstd) and print alerts.
    Scan(Box<scan::ScanArgs>),
    /// Run the seed rule over the built-in adversary tests and show what it catches and misses.
    Selfcheck,
    /// Print the ECS events read from raw audit logs, as NDJSON (what `scan` evaluates).
    Convert(convert::ConvertArgs),
    /// The rule pack: list, show, test (each rule's example events), convert (Sigma to EQL).
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// The seed's adversary tests, built in: list, show, emit their telemetry, run, verify.
    #[command(subcommand)]
    Atomic(atomic::AtomicCommand),
    /// Judge the system manager's units on this host or under --root (an image): what they run,
    /// how, and whether a package put them there, with reasons.
    Hunt(hunt_cmd::HuntArgs),
    /// Live detection: follow the audit log (or read a dispatcher's records on stdin) and raise
    /// alerts within a second, with nothing lost or repeated across restarts and rotation.
    Watch(Box<watch::WatchArgs>),
    /// Run the rule pack as a worker of a Kafka consumer group: events in from topics (keyed by
    /// host), alerts out to stdout and an alerts topic; N workers share the partitions.
    Stream(Box<stream::StreamArgs>),
    /// Set up what unithunt needs on this host (`setup audit-rules [--install]`).
    #[command(subcommand)]
    Setup(watch::SetupCommand),
    /// Print shell completions (`unithunt completions bash > /etc/bash_completion.d/unithunt`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from the same definitions as `--help`
    /// (`unithunt man | man -l -`).
    Man,
}

/// Transparent huge pages off for this process (what mimalloc's `MIMALLOC_ALLOW_THP=0` does): with
/// them, every first touch of a 2 MiB region of the allocator's arena is a huge page zeroed by the
/// kernel, so peak memory doubled (Sigma scan: 43.7 against 23.5 MiB; two-thread audit scan: 68
/// against 26 MiB) and the kernel time with it. Measured with `farm-bench`, paired: no scan got
/// slower, the audit scan on two threads 4% faster. Faults taken before this call keep their pages.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integer arguments only and touches no memory of
    // ours; its result is deliberately ignored (an older kernel without it keeps huge pages).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `unithunt watch @FILE`: the options in FILE, one per line (blank lines and `#` comments
/// skipped). auditd passes a dispatcher plugin at most two arguments (auditd-plugins(5)), so the
/// plugin runs `watch @/etc/unithunt/watch-plugin.args`. Written here rather than with the
/// `argfile` crate: only `watch` takes argument files (an EQL query may well start with `@`).
fn expand_argument_files(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    if args.get(1).is_none_or(|a| a != "watch") {
        return Ok(args);
    }
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.into_iter().enumerate() {
        match a
            .to_str()
            .and_then(|s| s.strip_prefix('@'))
            .filter(|_| i >= 2)
        {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("error: argument file {}: {e}", term::escape(path)))?;
                out.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(std::ffi::OsString::from),
                );
            }
            None => out.push(a),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let args = match expand_argument_files(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (args, config_files) = match config::apply(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() && !config_files.is_empty() {
                let files: Vec<String> = config_files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                eprintln!(
                    "note: options were also read from {} (docs/config.md)",
                    files.join(", ")
                );
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Some(Command::Eql(args)) => eql_cmd::run(*args),
        Some(Command::Scan(args)) => scan::run(*args),
        Some(Command::Selfcheck) => selfcheck::run(),
        None => host::run(cli.fail_on),
        Some(Command::Convert(args)) => convert::run(args),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "unithunt",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Man) => {
            let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `unithunt man | man -l -` closes the pipe when the reader quits.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Rules(cmd)) => rules_cmd::run(cmd),
        Some(Command::Atomic(cmd)) => atomic::run(cmd),
        Some(Command::Hunt(args)) => hunt_cmd::run(args),
        Some(Command::Watch(args)) => watch::run(*args),
        Some(Command::Stream(args)) => stream::run(*args),
        Some(Command::Setup(cmd)) => watch::setup(cmd),
    }
}
