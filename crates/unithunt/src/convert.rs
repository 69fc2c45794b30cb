//! `unithunt convert [PATH...]`: print the ECS events unithunt reads from an input, as NDJSON.
//!
//! What `scan` evaluates, made visible: to check a mapping, to write rules against real fields, or
//! to ship auditd telemetry to Elasticsearch in the shape its rules expect.

use crate::term::escape;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_readers::{auditd, defender, laurel, sysmon, BlockReader, Converter};

#[derive(Args)]
pub struct ConvertArgs {
    /// Audit logs (RAW or ENRICHED), LAUREL, Sysmon for Linux syslog, Defender exports (CSV or
    /// JSON); plain or gzip/zstd; `-` is standard input. The format is sniffed per file. Files of
    /// one format are one stream, in the order given (rotated logs: oldest first).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: ConvertArgs) -> ExitCode {
    let mut converters = [
        Converter::Auditd(Box::new(auditd::AuditTranscoder::new())),
        Converter::Laurel(laurel::LaurelTranscoder::new()),
        Converter::Sysmon(sysmon::SysmonConverter::default()),
        Converter::Defender(defender::DefenderConverter::new(false)),
        Converter::Defender(defender::DefenderConverter::new(true)),
    ];
    let mut events = 0u64;
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
        let mut first = match reader.next_block(1 << 20) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {shown}: {e}");
                failed = true;
                continue;
            }
        };
        let which = match first.as_ref().map(|b| &b.data[..]) {
            Some(d) if auditd::sniff(d) => 0,
            Some(d) if laurel::sniff(d) => 1,
            Some(d) if sysmon::sniff(d) => 2,
            Some(d) if defender::sniff_csv(d) => 3,
            Some(d) if defender::sniff_json(d) => 4,
            _ => {
                eprintln!(
                    "error: {shown}: not audit, LAUREL, Sysmon or Defender data (ECS needs no conversion)"
                );
                failed = true;
                continue;
            }
        };
        let converter = &mut converters[which];
        loop {
            let next = match first.take() {
                Some(b) => Ok(Some(b)),
                None => reader.next_block(1 << 20),
            };
            let (block, last) = match next {
                Ok(Some(b)) => (converter.convert(b), false),
                Ok(None) => (
                    converter.finish_file(reader.name().clone(), reader.bytes),
                    true,
                ),
                Err(e) => {
                    eprintln!(
                        "error: {shown}: read error at byte {}: {e}",
                        reader.raw_offset()
                    );
                    failed = true;
                    (
                        converter.finish_file(reader.name().clone(), reader.bytes),
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
            if last {
                break;
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
