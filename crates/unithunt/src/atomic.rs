//! `unithunt atomic`: the seed page's adversary tests, built in. `list` and `show` say what each
//! test does and what each data source should record; `emit` prints the telemetry a real run of
//! it produced; `run` plays it on this host (or into a directory tree) and always cleans up;
//! `verify` plays the four tests under auditd and says, per test and per rule, what was detected.
//!
//! The tests are shell scripts run by `sh`, the way an operator would type them; `$R` is the root
//! they write under (empty for the live system) and `$LIVE` is 1 when systemctl and useradd may
//! run. Artefacts are named `unithunt-atomic-*` (and `syslogd.service`, the seed's test 3) and are
//! removed after each run, on failure and on Ctrl-C too. The catalogue is data
//! (`examples/atomic/catalogue.toml`) and the runner is `unithunt-atomic`; this is the command line.

use crate::term::escape;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use unithunt_atomic::{find, tests, Rendering};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitFormat {
    /// ECS NDJSON, as unithunt maps the audit records (what `convert` prints).
    Ecs,
    /// The raw audit records (ENRICHED), as auditd wrote them.
    Auditd,
    /// LAUREL JSON lines.
    Laurel,
    /// Sysmon for Linux syslog lines.
    Sysmon,
    /// Defender for Endpoint Advanced Hunting export (CSV rows of DeviceProcessEvents and
    /// DeviceFileEvents).
    Mde,
}

/// The other formats' renderings of the recording (`examples/atomic/RENDERINGS.md`: derived from it,
#[derive(clap::Subcommand)]
pub enum AtomicCommand {
    /// List the tests.
    List,
    /// What a test does, the signal each data source should record, and the rules that must
    /// alert.
    Show {
        /// The test's id, as `atomic list` shows it (1 to 4, B1, B2, ...).
        id: String,
    },
    /// Print the telemetry a real run of the test produced: the audit records auditd wrote, their
    /// ECS mapping, or their LAUREL, Sysmon for Linux and Defender renderings.
    Emit {
        /// The test's id, as `atomic list` shows it (1 to 4, B1, B2, ...).
        id: String,
        /// Which rendering of the recording to print.
        #[arg(long, value_enum, default_value = "ecs")]
        format: EmitFormat,
    },
    /// Play a test on this host (needs --yes; root for tests 1, 3 and 4) or, with --root, into a
    /// directory tree for hunting tests. Always cleans up on the live system, also on failure or
    /// Ctrl-C; a --root tree is left for you to hunt.
    Run {
        /// The test's id, as `atomic list` shows it (1 to 4, B1, B2, ...).
        id: String,
        /// Really change this system.
        #[arg(long)]
        yes: bool,
        /// Write the test's files under DIR instead of the live system (no systemctl, no user).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Play tests 1-4 and B2 under auditd (as root; audit rules added for the run and removed
    /// after), scan the audit log they produced with the default pack, and print PASS or FAIL per
    /// test and per rule.
    Verify {
        /// Really change this system.
        #[arg(long)]
        yes: bool,
        /// The audit log auditd writes.
        #[arg(long, default_value = "/var/log/audit/audit.log")]
        log: PathBuf,
    },
}

pub fn run(cmd: AtomicCommand) -> ExitCode {
    match cmd {
        AtomicCommand::List => {
            for t in tests() {
                println!(
                    "{:<3} {:<9} {}",
                    t.id,
                    if t.malicious { "malicious" } else { "benign" },
                    t.name
                );
            }
            ExitCode::SUCCESS
        }
        AtomicCommand::Show { id } => match find(&id) {
            Some(t) => {
                unithunt_atomic::show(t);
                ExitCode::SUCCESS
            }
            None => unknown(&id),
        },
        AtomicCommand::Emit { id, format } => match find(&id) {
            Some(t) => emit(t, format),
            None => unknown(&id),
        },
        AtomicCommand::Run { id, yes, root } => match find(&id) {
            Some(t) => unithunt_atomic::run_one(t, yes, root.as_deref()),
            None => unknown(&id),
        },
        AtomicCommand::Verify { yes, log } => unithunt_atomic::verify(yes, &log, &scan),
    }
}

fn unknown(id: &str) -> ExitCode {
    let ids: Vec<&str> = tests().iter().map(|t| t.id.as_str()).collect();
    eprintln!(
        "error: no atomic test {:?}; the tests are {}",
        escape(id),
        ids.join(", ")
    );
    ExitCode::from(2)
}

fn emit(t: &unithunt_atomic::Atomic, format: EmitFormat) -> ExitCode {
    let rendering = match format {
        EmitFormat::Ecs => Rendering::Ecs,
        EmitFormat::Auditd => Rendering::Auditd,
        EmitFormat::Laurel => Rendering::Laurel,
        EmitFormat::Sysmon => Rendering::Sysmon,
        EmitFormat::Mde => Rendering::Mde,
    };
    match unithunt_atomic::emit(t, rendering) {
        // A closed pipe (`| head`) is not an error.
        Ok(bytes) => {
            let _ = std::io::stdout().lock().write_all(&bytes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `atomic verify` judges the alerts of this very program's `scan` over the log the tests wrote.
fn scan(log: &Path) -> Result<Vec<serde_json::Value>, String> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("unithunt"));
    let out = Command::new(exe)
        .args(["scan", "-q", "-o", "ndjson"])
        .arg(log)
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
