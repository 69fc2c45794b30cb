//! The `unithunt` command. Thin: argument parsing and output; the work is in the library crates.

mod convert;
mod eql_cmd;
mod host;
mod output;
mod progress;
mod scan;
mod selfcheck;
mod term;
mod window;

use clap::{Parser, Subcommand};

/// Events are JSON trees built and dropped by the million, on several threads: mimalloc's
/// thread-local free lists cut the allocator's share of a full-evaluation scan severalfold.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`, which libmimalloc-sys does not name: in both mimalloc 2 and 3 it is the
/// option just before `mi_option_use_numa_nodes`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;
use std::process::ExitCode;

/// Find Linux persistence through systemd (MITRE ATT&CK T1543.002).
///
/// With no command, unithunt runs its self-check (the seed detection rule against the four
/// adversary tests of the seed page, rendered as Elastic Defend events), then scans this host's
/// audit log with the rule pack when it can read it.
#[derive(Parser)]
#[command(name = "unithunt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
}

fn main() -> ExitCode {
    // mimalloc keeps freed memory for a while before returning it (purge delay, 10 ms by default);
    // scans free as fast as they allocate, so return it at once: peak memory of an all-alerting
    // scan drops from ~65 to ~37 MiB, and time drops too. A user's MIMALLOC_PURGE_DELAY wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores an option's value (see MI_OPTION_PURGE_DELAY).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Eql(args)) => eql_cmd::run(*args),
        Some(Command::Scan(args)) => scan::run(*args),
        Some(Command::Selfcheck) => selfcheck::run(),
        None => host::run(),
        Some(Command::Convert(args)) => convert::run(args),
    }
}
