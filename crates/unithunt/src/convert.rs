//! `unithunt convert [PATH...]`: print the ECS events unithunt reads from an input, as NDJSON.
//!
//! What `scan` evaluates, made visible: to check a mapping, to write rules against real fields, or
//! to ship auditd telemetry to Elasticsearch in the shape its rules expect.

use crate::term::escape;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_readers::{auditd, BlockReader};

#[derive(Args)]
pub struct ConvertArgs {
    /// Audit logs (RAW or ENRICHED), plain or gzip/zstd; `-` is standard input. Files are read in
    /// the order given, as one stream (rotated logs: oldest first).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: ConvertArgs) -> ExitCode {
    let mut transcoder = auditd::AuditTranscoder::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = false;
    let mut skipped_total = 0u64;
    for path in &args.paths {
        let shown = escape(&path.to_string_lossy());
        let mut reader = match BlockReader::open_path(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {shown}: {e}");
                failed = true;
                continue;
            }
        };
        let mut line_base = 0u64;
        loop {
            let (block, last) = match reader.next_block(1 << 20) {
                Ok(Some(b)) => (transcoder.convert(b), false),
                Ok(None) => (
                    transcoder.finish_file(reader.name().clone(), reader.bytes),
                    true,
                ),
                Err(e) => {
                    eprintln!(
                        "error: {shown}: read error at byte {}: {e}",
                        reader.raw_offset()
                    );
                    failed = true;
                    (
                        transcoder.finish_file(reader.name().clone(), reader.bytes),
                        true,
                    )
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
                skipped_total += c.skipped.len() as u64;
                line_base += c.lines;
            }
            if out.write_all(&block.data).is_err() {
                // A closed pipe (`| head`): stop quietly.
                return ExitCode::SUCCESS;
            }
            if last {
                break;
            }
        }
    }
    let _ = out.flush();
    eprintln!(
        "unithunt convert: {} event(s), {} line(s) skipped",
        transcoder.events, skipped_total
    );
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
