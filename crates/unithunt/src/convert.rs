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
use unithunt_readers::{expand_paths, ConvertOptions, Converters, Format, Input};

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
}

pub fn run(args: ConvertArgs) -> ExitCode {
    let mut converters = Converters::new(ConvertOptions::default());
    let mut events = 0u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = false;
    let mut skipped_total = 0u64;
    let (paths, errors) = expand_paths(&args.paths);
    for (p, e) in errors {
        eprintln!("error: {}: {e}", escape(&p.to_string_lossy()));
        failed = true;
    }
    for path in &paths {
        let shown = escape(&path.to_string_lossy());
        let mut input = match Input::open(path, args.input_format.0, 1 << 20) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {shown}: {e}");
                failed = true;
                continue;
            }
        };
        if input.format == Format::Ecs {
            eprintln!(
                "error: {shown}: not audit, LAUREL, Sysmon or Defender data (ECS needs no conversion)"
            );
            failed = true;
            continue;
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
                    failed = true;
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
                skipped_total += c.skipped.len() as u64;
                line_base += c.lines;
            }
            events += memchr::memchr_iter(b'\n', &block.data).count() as u64;
            if out.write_all(&block.data).is_err() {
                // A closed pipe (`| head`): stop quietly.
                return ExitCode::SUCCESS;
            }
        }
    }
    let _ = out.flush();
    eprintln!(
        "unithunt convert: {} event(s), {} line(s) skipped",
        events, skipped_total
    );
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
