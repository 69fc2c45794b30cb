//! `unithunt-corpus`: write a realistic Elastic Defend (endpoint) ECS NDJSON corpus.

use clap::Parser;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use unithunt_corpus::{
    parse_iso8601, parse_size, Config, Generator, DEFAULT_RELEVANT_RATE, DEFAULT_SEED,
    DEFAULT_START,
};

/// Write a deterministic, realistic Elastic Defend (endpoint) ECS NDJSON corpus for benchmarking.
///
/// Events are process (exec/fork/end), file and network events from a simulated fleet of Linux
/// hosts. A controlled fraction is systemd-relevant (unit files written by shells or scripts,
/// systemctl run from them, and benign twins from package managers and systemd itself).
#[derive(Parser, Debug)]
#[command(name = "unithunt-corpus", version, about, long_about)]
struct Cli {
    /// Stop once at least this many bytes are written (suffixes K, M, G, T; binary: 1K = 1024).
    #[arg(long, value_parser = parse_size, conflicts_with = "events")]
    size: Option<u64>,

    /// Write exactly this many events [default: 100000 when --size is not given].
    #[arg(long)]
    events: Option<u64>,

    /// Fraction of events that are systemd-relevant, between 0 and 1.
    #[arg(long, default_value_t = DEFAULT_RELEVANT_RATE, value_parser = parse_rate)]
    relevant: f64,

    /// Seed of the pseudo-random generator; same seed, same bytes.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Timestamp of the first event (ISO-8601, UTC).
    #[arg(long, default_value = DEFAULT_START, value_parser = parse_iso8601)]
    start: i64,

    /// Number of hosts in the simulated fleet.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    hosts: u64,

    /// Write to this file instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {s:?}"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("rate {r} is not between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unithunt-corpus: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    let cfg = Config {
        seed: cli.seed,
        start_ms: cli.start,
        relevant_rate: cli.relevant,
        hosts: cli.hosts as usize,
    };
    let sink: Box<dyn Write> = match &cli.out {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut gen = Generator::new(&cfg);
    let started = Instant::now();
    let mut bytes: u64 = 0;
    match (cli.size, cli.events) {
        (Some(limit), _) => {
            while bytes < limit {
                let (line, _) = gen.next_event();
                out.write_all(line.as_bytes())?;
                bytes += line.len() as u64;
            }
        }
        (None, events) => {
            for _ in 0..events.unwrap_or(100_000) {
                let (line, _) = gen.next_event();
                out.write_all(line.as_bytes())?;
                bytes += line.len() as u64;
            }
        }
    }
    out.flush()?;
    drop(out);
    let secs = started.elapsed().as_secs_f64();
    let s = gen.stats();
    let avg = if s.events > 0 {
        bytes as f64 / s.events as f64
    } else {
        0.0
    };
    eprintln!(
        "unithunt-corpus: wrote {} events, {} bytes ({:.1} MiB), {} relevant ({:.4}%); avg {:.0} B/event; \
         process {} / file {} / network {}; {:.2}s ({:.0} MiB/s)",
        s.events,
        bytes,
        bytes as f64 / (1 << 20) as f64,
        s.relevant,
        if s.events > 0 { 100.0 * s.relevant as f64 / s.events as f64 } else { 0.0 },
        avg,
        s.process,
        s.file,
        s.network,
        secs,
        bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
    );
    Ok(())
}
