//! `unithunt watch`: the command line of live detection. The work (follower, converter, detector,
//! journal, checkpoint and replay, shippers) is `unithunt_pipeline::live`; this file turns options
//! into a [`WatchOptions`], wires the sinks, and installs the signal handlers.
//!
//! How "exactly once" holds, kill -9 included, is told in `unithunt_pipeline::live`.

use crate::input_args::InputFormat;
use crate::term::escape;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;
use unithunt_output::{LineFormat, LinePrinter};
use unithunt_pipeline::live::ship::{self, start_shippers, Budget};
use unithunt_pipeline::live::{
    new_detector, watch_file, watch_stdin, write_atomic, Checkpoint, Control, Journal, Signals,
    Watch, WatchOptions,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchOutput {
    /// One line per alert for people (escaped).
    Table,
    /// One alert document per line.
    Ndjson,
    /// Nothing on stdout (the journal and the other sinks still get every alert).
    None,
}

#[derive(Args)]
pub struct WatchArgs {
    /// The log to follow, across rotation; `-` reads standard input (as an auditd dispatcher
    /// plugin: see packaging/audit-plugin-unithunt.conf).
    #[arg(default_value = "/var/log/audit/audit.log")]
    path: PathBuf,
    /// The input's format.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// Rules and tuning, as for `scan`; reloaded on SIGHUP.
    #[command(flatten)]
    rule_args: crate::rule_args::RuleArgs,
    /// What to print on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = WatchOutput::Table)]
    output: WatchOutput,
    /// The checkpoint file (position and log chain); the alert journal and the HTTP sink's
    /// position live beside it unless given.
    #[arg(long, default_value = "/var/lib/unithunt/watch.checkpoint")]
    checkpoint: PathBuf,
    /// The alert journal: every alert, NDJSON (default: `alerts.ndjson` beside the checkpoint).
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Rotate the journal past this many bytes (one previous file is kept: FILE.1).
    #[arg(long, default_value_t = 64 << 20)]
    alerts_max_bytes: u64,
    /// Remote sinks, shipped from the journal.
    #[command(flatten)]
    remote: crate::remote_args::RemoteArgs,
    /// Without a checkpoint, read the log from its start (default: from its end, like tail -F).
    #[arg(long)]
    from_start: bool,
    /// Save the checkpoint after this many events (and every 5 s, and on shutdown).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Print a statistics line every N seconds (0: only on SIGUSR1).
    #[arg(long, default_value_t = 0)]
    stats_interval: u64,
    /// Polling period of the followed file, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Stop when the input is exhausted (stdin closed; for a file: at its end, after replay).
    #[arg(long)]
    exit_at_eof: bool,
    /// Look up parents that started before the log in /proc (default: when following this
    /// host's own audit log or stdin), as `scan --this-host` does.
    #[arg(long, overrides_with = "not_this_host")]
    this_host: bool,
    /// Never look in /proc (the log is another host's, copied here).
    #[arg(long, overrides_with = "this_host")]
    not_this_host: bool,
    /// No statistics line at the end, no notes (errors are still said).
    #[arg(short, long)]
    quiet: bool,
}

/// Set by the signal handlers, read by the running watch.
pub(crate) static SIGNALS: Signals = Signals::new();

extern "C" fn on_stop(_: libc::c_int) {
    SIGNALS.stop.store(true, Ordering::SeqCst);
}
extern "C" fn on_hup(_: libc::c_int) {
    SIGNALS.reload.store(true, Ordering::SeqCst);
}
extern "C" fn on_usr1(_: libc::c_int) {
    SIGNALS.stats.store(true, Ordering::SeqCst);
}

pub(crate) fn install_signals() {
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGHUP,
            on_hup as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGUSR1,
            on_usr1 as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// What `-o` prints alerts with on stdout (`watch`, `stream`).
pub(crate) fn stdout_printer(output: WatchOutput) -> Option<LinePrinter<std::io::Stdout>> {
    let format = match output {
        WatchOutput::Table => LineFormat::Table,
        WatchOutput::Ndjson => LineFormat::Ndjson,
        WatchOutput::None => return None,
    };
    Some(LinePrinter::new(format, std::io::stdout()))
}

pub fn run(args: WatchArgs) -> ExitCode {
    let started = Instant::now();
    let set = match args.rule_args.load_kept() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stdin = args.path.as_os_str() == "-";
    // A log that is not there yet is waited for when following; read to its end, it is an error.
    if !stdin {
        if let Err(e) = std::fs::metadata(&args.path) {
            if args.exit_at_eof {
                eprintln!("error: {}: {e}", escape(&args.path.to_string_lossy()));
                return ExitCode::from(2);
            }
            if !args.quiet {
                eprintln!(
                    "note: {}: {e}; waiting for it to appear",
                    escape(&args.path.to_string_lossy())
                );
            }
        }
    }
    let this_host = if args.this_host {
        true
    } else if args.not_this_host {
        false
    } else {
        stdin || args.path == Path::new("/var/log/audit/audit.log")
    };
    let journal_path = args.alerts.clone().unwrap_or_else(|| {
        args.checkpoint
            .parent()
            .unwrap_or(Path::new("."))
            .join("alerts.ndjson")
    });
    let journal = match Journal::open(&journal_path, args.alerts_max_bytes) {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "error: alert journal {} (give --checkpoint PATH to keep unithunt's state elsewhere)",
                escape(&e)
            );
            return ExitCode::from(2);
        }
    };
    let checkpoint = if stdin {
        None
    } else {
        match Checkpoint::load(&args.checkpoint) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {}", escape(&e));
                return ExitCode::from(2);
            }
        }
    };
    install_signals();
    let remote = args.remote.remote();
    let shippers = match start_shippers(&remote, &journal, &journal_path, &args.checkpoint) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", escape(&e));
            return ExitCode::from(2);
        }
    };
    let printer = stdout_printer(args.output);
    let mut w = Watch::new(
        new_detector(set, None),
        args.input_format.0,
        this_host,
        journal,
        printer,
    );
    let reload = || args.rule_args.load_kept();
    let ctl = Control {
        signals: &SIGNALS,
        rules: &reload,
    };
    let options = WatchOptions {
        path: args.path.clone(),
        checkpoint: args.checkpoint.clone(),
        from_start: args.from_start,
        checkpoint_every: args.checkpoint_every,
        stats_interval: args.stats_interval,
        poll_ms: args.poll_ms,
        exit_at_eof: args.exit_at_eof,
    };
    let status = if stdin {
        watch_stdin(&options, &ctl, &mut w, started)
    } else {
        watch_file(&options, &ctl, &mut w, checkpoint, started)
    };
    w.journal().sync();
    // The input ended (or the journal failed): the sinks get a bounded budget to deliver what
    // is left. Stopped by a signal: a sink that is delivering gets a moment, a failing one none.
    // A signal during the budget ends it at once.
    let signalled = SIGNALS.stop.load(Ordering::SeqCst);
    let budget = if signalled {
        Budget {
            attempts: 0,
            time: ship::SIGNAL_GRACE,
        }
    } else {
        Budget {
            attempts: ship::FINAL_ATTEMPTS,
            time: ship::FINAL_TIME,
        }
    };
    SIGNALS.stop.store(false, Ordering::SeqCst);
    let sink_failed = ship::end_all(shippers, budget, signalled, || {
        SIGNALS.stop.load(Ordering::SeqCst)
    });
    if !args.quiet {
        eprintln!("{}", w.stats_line(started));
    }
    if sink_failed && status == ExitCode::SUCCESS {
        ExitCode::from(1)
    } else {
        status
    }
}

/// `unithunt setup audit-rules`: the audit rules the rule pack needs.
pub const AUDIT_RULES: &str = include_str!("../../../packaging/unithunt.rules");

#[derive(clap::Subcommand)]
pub enum SetupCommand {
    /// Print the audit rules the rule pack needs (with --install, write them to
    /// /etc/audit/rules.d/unithunt.rules and load them with augenrules).
    AuditRules {
        /// Write the rules to /etc/audit/rules.d/unithunt.rules and load them (augenrules --load;
        /// root).
        #[arg(long)]
        install: bool,
    },
}

pub fn setup(cmd: SetupCommand) -> ExitCode {
    match cmd {
        SetupCommand::AuditRules { install: false } => {
            print!("{AUDIT_RULES}");
            ExitCode::SUCCESS
        }
        SetupCommand::AuditRules { install: true } => {
            let path = Path::new("/etc/audit/rules.d/unithunt.rules");
            if let Err(e) = write_atomic(path, AUDIT_RULES.as_bytes()) {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", path.display());
            // A watch on a directory that is not there is refused when the rules load, and what
            // is written there later never recorded: the directories are made (empty) first.
            let rules = AUDIT_RULES
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'));
            for d in unithunt_atomic::dirs::create_watched_dirs(rules) {
                eprintln!(
                    "created {} (empty) so that its audit watch loads",
                    d.display()
                );
            }
            match std::process::Command::new("augenrules")
                .arg("--load")
                .status()
            {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => {
                    eprintln!("error: augenrules --load: {s}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!(
                        "error: augenrules: {e} (load them with: auditctl -R {})",
                        path.display()
                    );
                    ExitCode::from(2)
                }
            }
        }
    }
}
