//! Readers: turn input files into JSON events, and account for every line.
//!
//! # Brief overview
//!
//! [`Input`] is an opened input whose [`Format`] is given or sniffed ([`format::sniff`]: past a
//! byte order mark, blank and `#` comment lines); [`Input::next_ecs`] yields blocks of ECS NDJSON
//! through the format's [`Converter`] (kept in [`Converters`], one per format across files), and
//! [`read_input`] yields JSON documents. Every command reads through these.
//!
//! ```
//! use unithunt_readers::{ConvertOptions, Converters, Format, Input};
//! let log = b"type=SYSCALL msg=audit(1795806430.136:6399): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 uid=0 comm=\"systemctl\" exe=\"/usr/bin/systemctl\"\n".to_vec();
//! let mut input = Input::from_bytes("audit.log", log, None).unwrap();
//! assert_eq!(input.format, Format::Auditd);
//! let mut converters = Converters::new(ConvertOptions::default());
//! let mut ecs = Vec::new();
//! while let Some(block) = input.next_ecs(converters.get(input.format), 1 << 20).unwrap() {
//!     ecs.extend_from_slice(&block.data);
//! }
//! let event: serde_json::Value = serde_json::from_slice(ecs.trim_ascii_end()).unwrap();
//! assert_eq!(event["process"]["executable"], "/usr/bin/systemctl");
//! ```
//!
//! Lower down:
//! [`Source`] is an opened input (a file or standard input). [`read_events`] sniffs its shape and
//! streams events to a callback:
//! - NDJSON: one event per line (Elastic Defend/Auditbeat exports, `jq -c` output). Each raw line is
//!   offered to a `keep` predicate first, so a literal prefilter can drop it before it is parsed.
//! - one JSON document: an array of events, or an Elasticsearch `_search` response (`hits.hits[]._source`)
//!   or `_eql/search` response (`hits.events[]`, `hits.sequences[].events[]`).
//!
//! [`ReadStats`] holds the accounting invariant: `lines == events + filtered + skipped`; each skipped
//! line is reported with its file, line and reason (the first [`MAX_REPORTED`] kept verbatim).

pub mod archive;
pub mod auditd;
mod blocks;
pub mod defender;
pub mod doc;
pub mod format;
mod input;
pub mod laurel;
mod lines;
pub mod sysmon;

pub use archive::open_inputs;
pub use format::{ConvertOptions, Format};
pub use input::{expand_paths, read_input, Converters, Expanded, Input};

/// Skips for the lines too long to hold (longer than [`MAX_LINE`]) that precede a converted block's
/// lines: each counted in `lines`, numbered from 0 at the block's first source line (`first` lines
/// came before it in the file).
pub(crate) fn oversized_skips(raw: &Block, lines: &mut u64, first: u64) -> Vec<Skipped> {
    raw.oversized
        .iter()
        .map(|len| {
            *lines += 1;
            Skipped {
                file: raw.file.to_string(),
                line: *lines - first - 1,
                reason: format!(
                    "line of {len} bytes is longer than the {} MiB limit",
                    MAX_LINE >> 20
                ),
            }
        })
        .collect()
}

/// A format read by conversion to ECS NDJSON, block by block, in input order (conversion is
/// sequential: grouping records and tracking processes need the stream in order).
pub enum Converter {
    // Boxed: the transcoder (its window and process table) is much larger than the others.
    Auditd(Box<auditd::AuditTranscoder>),
    Laurel(laurel::LaurelTranscoder),
    Sysmon(sysmon::SysmonConverter),
    Defender(defender::DefenderConverter),
}

impl Converter {
    /// The ECS block of a block of source lines.
    pub fn convert(&mut self, raw: Block) -> Block {
        match self {
            Converter::Auditd(t) => t.convert(raw),
            Converter::Laurel(t) => t.convert(raw),
            Converter::Sysmon(t) => t.convert(raw),
            Converter::Defender(t) => t.convert(raw),
        }
    }

    /// Closes the events still open (a pause in a followed input), as ECS NDJSON appended to
    /// `out`; the file goes on (its lines are numbered on). Only audit logs hold events open.
    pub fn flush_open(&mut self, out: &mut Vec<u8>) {
        if let Converter::Auditd(t) = self {
            t.flush(out);
        }
    }

    /// Events still open, waiting for more records (only audit logs hold events open).
    pub fn open_events(&self) -> usize {
        match self {
            Converter::Auditd(t) => t.open_events(),
            _ => 0,
        }
    }

    /// A follower's clock, before it feeds lines (see [`auditd::AuditTranscoder::clock_ms`]).
    pub fn set_clock(&mut self, now_ms: u64) {
        if let Converter::Auditd(t) = self {
            t.clock_ms = now_ms;
        }
    }

    /// For a follower: closes the open events quiet for `age_ms` (see
    /// [`auditd::AuditTranscoder::close_settled`]), as ECS NDJSON appended to `out`.
    pub fn close_settled(&mut self, now_ms: u64, age_ms: u64, out: &mut Vec<u8>) {
        if let Converter::Auditd(t) = self {
            t.close_settled(now_ms, age_ms, out);
        }
    }

    /// What is left at the end of a file (events still open), as a last block.
    pub fn finish_file(&mut self, file: std::sync::Arc<str>, offset: u64) -> Block {
        match self {
            Converter::Auditd(t) => t.finish_file(file, offset),
            Converter::Laurel(t) => t.finish_file(file, offset),
            Converter::Sysmon(t) => {
                t.lines = 0;
                Block::from_converted(file, pooled_buffer(), offset, Converted::default())
            }
            Converter::Defender(t) => t.finish_file(file, offset),
        }
    }
}

/// Decides, before an event is written, whether any rule may match it. A scan sets one on the
/// audit converter: the event is first made with only the members rules read ([`Self::reads`]),
/// and made whole and written only if [`Self::may_match`] says so; the others are counted
/// ([`Converted::screened`]) but never written as JSON nor parsed back. Writing and re-reading them
/// was most of the cost of scanning an audit log.
#[derive(Clone)]
pub struct EventScreen {
    /// Whether a rule reads the member at this dotted path (or below it, or above it).
    pub reads: doc::PathFilter,
    /// Whether a rule may match an event made of the members `reads` accepts.
    pub may_match: std::sync::Arc<dyn Fn(&serde_json::Value) -> bool + Send + Sync>,
}

pub use blocks::{
    pooled_buffer, Block, BlockData, BlockReader, Compression, Converted, MAX_LINE, UTF8_BOM,
};

use serde_json::Value as Json;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

/// How many skipped lines are kept with their reasons; the rest are only counted.
pub const MAX_REPORTED: usize = 100;

/// An opened input.
pub struct Source {
    pub name: String,
    pub(crate) reader: Box<dyn BufRead>,
}

impl Source {
    /// Opens a path; `-` is standard input.
    pub fn open(path: &str) -> io::Result<Source> {
        if path == "-" {
            return Ok(Source {
                name: "<stdin>".into(),
                reader: Box::new(BufReader::new(io::stdin())),
            });
        }
        let f = File::open(path)?;
        Ok(Source {
            name: path.to_string(),
            reader: Box::new(BufReader::with_capacity(1 << 20, f)),
        })
    }

    /// A source over bytes in memory (tests, embedded examples).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Source {
        Source {
            name: name.to_string(),
            reader: Box::new(io::Cursor::new(bytes)),
        }
    }
}

/// A line that did not become an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct ReadStats {
    pub files: u64,
    pub bytes: u64,
    /// Input lines (NDJSON) or documents' lines (JSON documents count as their line count).
    pub lines: u64,
    /// Events handed to the callback.
    pub events: u64,
    /// Lines the `keep` predicate dropped unparsed (no rule can match them).
    pub filtered: u64,
    /// Lines that were blank or malformed.
    pub skipped: u64,
    pub reported: Vec<Skipped>,
}

impl ReadStats {
    pub(crate) fn skip(&mut self, file: &str, line: u64, reason: String) {
        self.skipped += 1;
        if self.reported.len() < MAX_REPORTED {
            self.reported.push(Skipped {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }
}

/// Streams the events of `src`. `keep` sees each raw NDJSON line before parsing; `sink` gets each
/// event with its line number.
pub fn read_events(
    mut src: Source,
    keep: &mut dyn FnMut(&[u8]) -> bool,
    sink: &mut dyn FnMut(Json, u64),
    stats: &mut ReadStats,
) -> io::Result<()> {
    stats.files += 1;
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    // Sniff: the first non-blank line decides. A line holding a whole JSON object that is not a
    // search response means NDJSON; anything else is one JSON document.
    loop {
        if !next_line(&mut src, &mut buf, &mut line_no, stats)? {
            return Ok(());
        }
        let trimmed = buf.trim_ascii();
        if trimmed.is_empty() {
            stats.skip(&src.name, line_no, "blank line".into());
            continue;
        }
        // A first line that looks like a whole object but does not parse is a malformed NDJSON line.
        let whole_line_object = trimmed.first() == Some(&b'{')
            && match serde_json::from_slice::<Json>(trimmed) {
                Ok(j) => j.is_object() && !is_response(&j),
                Err(_) => trimmed.last() == Some(&b'}'),
            };
        if whole_line_object {
            handle_line(&src.name, line_no, trimmed, keep, sink, stats);
            break;
        }
        // One document: read the rest and parse it whole.
        let first_line = line_no;
        let mut rest = Vec::new();
        src.reader.read_to_end(&mut rest)?;
        stats.bytes += rest.len() as u64;
        let extra_lines = memchr::memchr_iter(b'\n', &rest).count() as u64
            + u64::from(!rest.is_empty() && !rest.ends_with(b"\n"));
        stats.lines += extra_lines;
        buf.extend_from_slice(&rest);
        let total_lines = 1 + extra_lines;
        match serde_json::from_slice::<Json>(&buf) {
            Ok(doc) => {
                let mut events = Vec::new();
                collect_document(doc, &mut events);
                let count = events.len() as u64;
                for e in events {
                    sink(e, first_line);
                }
                stats.events += count;
                // The document's lines are accounted as one event source: lines beyond the event
                // count are structure, not skipped input.
                stats.lines = stats.lines - total_lines + count.max(1);
                if count == 0 {
                    stats.skip(
                        &src.name,
                        first_line,
                        "JSON document holds no events".into(),
                    );
                }
            }
            Err(e) => {
                stats.lines = stats.lines - total_lines + 1;
                stats.skip(
                    &src.name,
                    first_line + e.line() as u64 - 1,
                    format!("malformed JSON document: {e}"),
                );
            }
        }
        return Ok(());
    }
    loop {
        if !next_line(&mut src, &mut buf, &mut line_no, stats)? {
            return Ok(());
        }
        let trimmed = buf.trim_ascii();
        handle_line(&src.name, line_no, trimmed, keep, sink, stats);
    }
}

/// Reads the next line into `buf` and counts it; false at the end of the input.
fn next_line(
    src: &mut Source,
    buf: &mut Vec<u8>,
    line_no: &mut u64,
    stats: &mut ReadStats,
) -> io::Result<bool> {
    buf.clear();
    let n = src.reader.read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    stats.bytes += n as u64;
    *line_no += 1;
    stats.lines += 1;
    if *line_no == 1 && buf.starts_with(UTF8_BOM) {
        // As BlockReader does: a byte order mark where the text begins is not part of it.
        buf.drain(..UTF8_BOM.len());
    }
    Ok(true)
}

fn handle_line(
    file: &str,
    line_no: u64,
    line: &[u8],
    keep: &mut dyn FnMut(&[u8]) -> bool,
    sink: &mut dyn FnMut(Json, u64),
    stats: &mut ReadStats,
) {
    if line.is_empty() {
        stats.skip(file, line_no, "blank line".into());
        return;
    }
    if !keep(line) {
        // Even a line no rule can match must be well-formed to count as read: validate it without
        // building a document (much cheaper than a full parse), so malformed input is never silently
        // counted as filtered.
        match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) if line.first() == Some(&b'{') => stats.filtered += 1,
            Ok(_) => stats.skip(file, line_no, "not a JSON object".into()),
            Err(e) => stats.skip(
                file,
                line_no,
                format!("malformed JSON at column {}: {e}", e.column()),
            ),
        }
        return;
    }
    match serde_json::from_slice::<Json>(line) {
        Ok(doc @ Json::Object(_)) => {
            stats.events += 1;
            sink(doc, line_no);
        }
        Ok(_) => stats.skip(file, line_no, "not a JSON object".into()),
        Err(e) => stats.skip(
            file,
            line_no,
            format!("malformed JSON at column {}: {e}", e.column()),
        ),
    }
}

/// True for an Elasticsearch `_search`/`_eql/search` response body.
pub fn is_response(j: &Json) -> bool {
    j.get("hits").is_some_and(|h| {
        h.get("hits").is_some() || h.get("events").is_some() || h.get("sequences").is_some()
    })
}

/// Extracts events from a document: an array, a search response, a hit (`_source`), or a single event.
pub fn collect_document(doc: Json, out: &mut Vec<Json>) {
    match doc {
        Json::Array(items) => {
            for item in items {
                if item.get("_source").is_some() {
                    collect_document(item, out);
                } else if item.is_object() {
                    out.push(item);
                }
            }
        }
        Json::Object(mut m) => {
            if let Some(src) = m.remove("_source") {
                if src.is_object() {
                    out.push(src);
                }
                return;
            }
            if let Some(Json::Object(mut hits)) = m.remove("hits") {
                for key in ["hits", "events"] {
                    if let Some(Json::Array(items)) = hits.remove(key) {
                        for h in items {
                            collect_document(h, out);
                        }
                    }
                }
                if let Some(Json::Array(seqs)) = hits.remove("sequences") {
                    for s in seqs {
                        if let Some(Json::Array(evs)) = s.get("events").cloned() {
                            for e in evs {
                                collect_document(e, out);
                            }
                        }
                    }
                }
                return;
            }
            out.push(Json::Object(m));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &str) -> (Vec<(Json, u64)>, ReadStats) {
        let mut out = Vec::new();
        let mut stats = ReadStats::default();
        read_events(
            Source::from_bytes("t", bytes.as_bytes().to_vec()),
            &mut |_| true,
            &mut |j, l| out.push((j, l)),
            &mut stats,
        )
        .unwrap();
        (out, stats)
    }

    #[test]
    fn ndjson_accounts_for_every_line() {
        let (evs, st) = read("{\"a\":1}\n\nnot json\n[1]\n{\"a\":2}\n{\"a\":");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].1, 5);
        assert_eq!(st.lines, 6);
        assert_eq!(st.events + st.filtered + st.skipped, st.lines);
        let lines: Vec<u64> = st.reported.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 6]);
    }

    #[test]
    fn search_responses_and_arrays() {
        let (evs, st) =
            read("{\"hits\": {\"hits\": [{\"_source\": {\"a\": 1}}, {\"_source\": {\"a\": 2}}]}}");
        assert_eq!(evs.len(), 2);
        assert_eq!(st.events + st.filtered + st.skipped, st.lines);
        let (evs, _) = read("[\n {\"a\": 1},\n {\"a\": 2}\n]\n");
        assert_eq!(evs.len(), 2);
        let (evs, _) = read("{\"hits\":{\"sequences\":[{\"events\":[{\"_source\":{\"a\":1}},{\"_source\":{\"a\":2}}]}]}}");
        assert_eq!(evs.len(), 2);
        let (evs, st) = read("[\n {\"a\": 1},\n");
        assert!(evs.is_empty());
        assert_eq!(st.skipped, 1);
        assert_eq!(st.events + st.filtered + st.skipped, st.lines);
    }

    #[test]
    fn filtered_lines_are_still_validated() {
        let mut stats = ReadStats::default();
        let bytes = b"{\"a\":1}\nbad\n{\"a\":\n".to_vec();
        read_events(
            Source::from_bytes("t", bytes),
            &mut |_| false,
            &mut |_, _| {},
            &mut stats,
        )
        .unwrap();
        assert_eq!((stats.filtered, stats.skipped), (1, 2));
        assert_eq!(stats.reported[0].line, 2);
    }

    #[test]
    fn invalid_utf8_is_reported_not_fatal() {
        let mut stats = ReadStats::default();
        let mut n = 0;
        let bytes = b"{\"a\":\"\xff\"}\n{\"a\":1}\n".to_vec();
        read_events(
            Source::from_bytes("t", bytes),
            &mut |_| true,
            &mut |_, _| n += 1,
            &mut stats,
        )
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(stats.skipped, 1);
    }
}
