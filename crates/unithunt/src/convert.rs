//! `unithunt convert [PATH...]`: print the ECS events unithunt reads from an input, as NDJSON.
//!
//! What `scan` evaluates, made visible: to check a mapping, to write rules against real fields, or
//! to ship auditd telemetry to Elasticsearch in the shape its rules expect.

use crate::input_args::InputFormat;
use crate::term::escape;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_readers::{ConvertOptions, Converters, Format, Input};

#[derive(Args)]
pub struct ConvertArgs {
    /// Audit logs (RAW or ENRICHED), LAUREL, Sysmon for Linux syslog, Defender exports (CSV or
    /// JSON), or directories of them; plain or gzip/zstd; `-` is standard input. Files of one
    /// format are one stream, in the order given (rotated logs: oldest first).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Input format; `auto` sniffs each file.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// No summary on stderr (errors and skipped lines are still said).
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: ConvertArgs) -> ExitCode {
    let mut converters = Converters::new(ConvertOptions::default());
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut not_read = Vec::new();
    let (paths, errors) = crate::input_args::expand(&args.paths, &mut not_read);
    for (p, e) in errors {
        eprintln!("error: {}: {e}", escape(&p.to_string_lossy()));
        tally.failed = true;
    }
    for path in &paths {
        let opened = crate::input_args::for_each_input(
            path,
            args.input_format.0,
            1 << 20,
            &mut not_read,
            &mut |input| {
                if tally.closed {
                    return;
                }
                match input {
                    Ok(input) => convert_one(input, &mut converters, &mut out, &mut tally),
                    Err(e) => {
                        eprintln!("error: {}: {e}", escape(&path.to_string_lossy()));
                        tally.failed = true;
                    }
                }
            },
        );
        if let Err(e) = opened {
            eprintln!("error: {}: {e}", escape(&path.to_string_lossy()));
            tally.failed = true;
        }
        if tally.closed {
            // A closed pipe (`| head`): stop quietly.
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    if !args.quiet {
        crate::input_args::say_not_read(&not_read);
        eprintln!(
            "unithunt convert: {} event(s), {} line(s) skipped",
            tally.events, tally.skipped
        );
    }
    if tally.failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Default)]
struct Tally {
    events: u64,
    skipped: u64,
    failed: bool,
    /// Standard output was closed.
    closed: bool,
}

/// Converts one input to stdout, saying its skipped lines and warnings with their place.
fn convert_one(
    mut input: Input,
    converters: &mut Converters,
    out: &mut impl Write,
    tally: &mut Tally,
) {
    let shown = escape(input.name());
    if input.format == Format::Ecs {
        eprintln!(
            "error: {shown}: not audit, LAUREL, Sysmon or Defender data (ECS needs no conversion)"
        );
        tally.failed = true;
        return;
    }
    let mut line_base = 0u64;
    loop {
        let block = match input.next_ecs(converters.get(input.format), 1 << 20) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                eprintln!(
                    "error: {shown}: read error at byte {}: {e}",
                    input.reader().raw_offset()
                );
                tally.failed = true;
                continue;
            }
        };
        if let Some(c) = &block.converted {
            for s in &c.skipped {
                eprintln!(
                    "skipped {shown}:{}: {}",
                    line_base + s.line + 1,
                    escape(&s.reason)
                );
            }
            for w in &c.warnings {
                eprintln!(
                    "warning {shown}:{}: {}",
                    line_base + w.line + 1,
                    escape(&w.reason)
                );
            }
            tally.skipped += c.skipped.len() as u64;
            line_base += c.lines;
        }
        tally.events += memchr::memchr_iter(b'\n', &block.data).count() as u64;
        if out.write_all(&block.data).is_err() {
            tally.closed = true;
            return;
        }
    }
}
