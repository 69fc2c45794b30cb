//! Live detection (`unithunt watch`). Follows an audit log as auditd writes it (or reads records on
//! stdin as an auditd dispatcher plugin), converts and evaluates each event as it completes, and
//! hands alerts to sinks, with nothing lost or alerted twice across restarts and log rotation.
//!
//! How "exactly once" holds, kill -9 included:
//! - Every alert has a deterministic id (`kibana.alert.uuid`: a UUIDv5 of the rule and the event
//!   ids), and is appended to the **alert journal** (NDJSON) before any other sink sees it. The
//!   page cache survives the death of the process, so what was appended is there at restart; a
//!   torn last line is cut off (its alert is raised again).
//! - The **checkpoint** (written to a temporary file, fsynced, renamed) records the chain of log
//!   files read (device and inode, and where reading began in the first). At restart the chain is
//!   **replayed** from its start, with the files rotated since, through the converter and the rules,
//!   so the process table and pending sequences are as they were; an alert whose id is in the
//!   journal is not raised again. Replay is bounded ([`REPLAY_LIMIT`] bytes, oldest files dropped
//!   first); beyond it, state older than the limit is not rebuilt.
//! - The HTTP sink ships the journal (its on-disk spool) from a persisted position, as
//!   Elasticsearch `_bulk` `create` actions with the alert id as `_id`: a batch re-sent after a crash
//!   is refused as a conflict (409), not indexed twice.
//!
//! The pieces: [`Follower`] (whole lines appended to a log, across rotation by inode),
//! [`Checkpoint`] and [`replay_plan`] (the chain of files read, replayed at restart),
//! [`Journal`] (the idempotent alert journal, itself an [`AlertSink`]), [`ship`] (the shippers
//! that deliver the journal through a `Transport`), and [`Watch`] (one watch's state: the input's
//! converter, the [`LiveDetector`], the journal, the printer), driven by [`watch_file`] and
//! [`watch_stdin`].

mod checkpoint;
mod follow;
mod journal;
mod run;
pub mod ship;
pub mod state;

pub use checkpoint::{replay_plan, Checkpoint, FileId, Replay, CHAIN_MAX, REPLAY_LIMIT};
pub use follow::{Follower, Polled, MAX_LINE, READ_CHUNK};
pub use journal::{rotated_path, Journal};
pub use run::{watch_file, watch_stdin};

pub use state::write_atomic;

use serde_json::{json, Value as Json};
use state::now_ms;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use unithunt_detect::LiveDetector;
use unithunt_event::{parse_timestamp, TimestampFormat};
use unithunt_output::term::escape;
use unithunt_output::{AlertSink, LinePrinter};
use unithunt_readers::format::sniff_decided;
use unithunt_readers::{Block, ConvertOptions, Converter, Format};
use unithunt_rules::alert::EventOrigin;
use unithunt_rules::RuleSet;

/// How a watch of a file runs (the command line's options).
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The log to follow.
    pub path: PathBuf,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// Without a checkpoint, read the log from its start (otherwise from its end).
    pub from_start: bool,
    /// Save the checkpoint after this many events (and every 5 s, and at the end).
    pub checkpoint_every: u64,
    /// A statistics line every this many seconds (0: only when asked).
    pub stats_interval: u64,
    /// Polling period of the followed file, in milliseconds.
    pub poll_ms: u64,
    /// Stop at the end of the input.
    pub exit_at_eof: bool,
}

/// What the process asks of a running watch, set from signal handlers (stores to atomics only).
#[derive(Default)]
pub struct Signals {
    /// Stop (SIGTERM, SIGINT).
    pub stop: AtomicBool,
    /// Reload the rules (SIGHUP).
    pub reload: AtomicBool,
    /// Print a statistics line (SIGUSR1).
    pub stats: AtomicBool,
}

impl Signals {
    pub const fn new() -> Signals {
        Signals {
            stop: AtomicBool::new(false),
            reload: AtomicBool::new(false),
            stats: AtomicBool::new(false),
        }
    }
}

/// A running watch's link to its process: the signals, and how to load the rules again.
pub struct Control<'a> {
    pub signals: &'a Signals,
    /// Loads the rules (at a reload); kept for the life of the process (see [`new_detector`]).
    pub rules: &'a dyn Fn() -> Result<&'static RuleSet, String>,
}

/// Open audit events are closed after this long without input (auditd writes an event's records
/// together; a pause this long means the event is complete).
pub const IDLE_FLUSH: Duration = Duration::from_millis(250);
/// The detector of `set` (keeping the pending sequences of unchanged rules from `previous`),
/// saying which correlations do not resolve.
pub fn new_detector(set: &'static RuleSet, previous: Option<LiveDetector>) -> LiveDetector {
    let (detector, warnings) =
        LiveDetector::new(set, previous, unithunt_detect::DEFAULT_MAX_PENDING);
    for w in warnings {
        eprintln!("warning: {}", escape(&w));
    }
    detector
}

/// Counters for the statistics line.
#[derive(Default, Clone, Debug)]
pub struct Stats {
    pub lines: u64,
    pub events: u64,
    pub alerts: u64,
    pub duplicates: u64,
    pub skipped: u64,
    /// Events ruled out unparsed by the rules' literal prefilter.
    pub filtered: u64,
    pub newest_event_ms: i64,
    /// `event.id` of the newest event evaluated.
    pub last_event_id: String,
    /// Skipped lines said on stderr so far (at most [`SKIPS_SAID`]).
    pub said: u64,
}

/// Skipped lines said on stderr with where and why, per run (watch) or partition (stream);
/// past it they are counted only.
pub const SKIPS_SAID: u64 = 20;

impl Stats {
    /// A line that is not an event: counted, and the first [`SKIPS_SAID`] said with where it
    /// was (`FILE:LINE` or `FILE@BYTE` for watch, `TOPIC/PARTITION@OFFSET` for stream) and why.
    pub fn skip(&mut self, place: &str, reason: &str) {
        self.skipped += 1;
        if self.said < SKIPS_SAID {
            self.said += 1;
            eprintln!("warning: {}: {}; skipped", escape(place), escape(reason));
            if self.said == SKIPS_SAID {
                eprintln!(
                    "warning: {}: further skipped lines are counted only (in the statistics line)",
                    escape(place)
                );
            }
        }
    }
}

/// Each converted event (ECS NDJSON lines) through `engine`: counted in `stats` (a line that is
/// not JSON is skipped), shown to `seen` (candidates only: events the prefilter rules out are
/// not parsed), its alerts handed to `raise`. The one place live drivers (`watch`, the
/// stream worker) turn converted text into evaluated events.
pub fn detect_events(
    engine: &mut LiveDetector,
    ecs: &[u8],
    origin: &EventOrigin,
    stats: &mut Stats,
    seen: &mut dyn FnMut(&Json),
    raise: &mut dyn FnMut(Json),
) {
    // As the batch scan does: an event whose text holds none of the literals every stage
    // predicate needs is ruled out unparsed (the prefilter is sound: such an event matches no
    // stage, so no runner or correlation would see it).
    let set = engine.set();
    // One pass over the whole chunk (the block search the scan uses), not one per line: the
    // start offsets of the lines some stage may match, in order.
    let flagged: Option<Vec<usize>> = (set.always().is_empty() && set.prefilter().is_useful())
        .then(|| {
            let screen = set.prefilter().screen_block(ecs);
            screen.lines.into_iter().map(|(at, _)| at).collect()
        });
    let mut next_flag = 0;
    let mut at = 0;
    for line in ecs.split_inclusive(|&b| b == b'\n') {
        let start = at;
        at += line.len();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if let Some(flagged) = &flagged {
            while flagged.get(next_flag).is_some_and(|&f| f < start) {
                next_flag += 1;
            }
            if flagged.get(next_flag) != Some(&start) {
                // Its shape is still checked, as the scan checks it.
                let t = line.trim_ascii();
                if t.first() == Some(&b'{') && t.last() == Some(&b'}') {
                    stats.events += 1;
                    stats.filtered += 1;
                } else {
                    stats.skip(&place(origin), "an event line that is not a JSON object");
                }
                continue;
            }
        }
        let doc = match serde_json::from_slice::<Json>(line) {
            Ok(d @ Json::Object(_)) => d,
            Ok(_) => {
                stats.skip(&place(origin), "an event line that is not a JSON object");
                continue;
            }
            Err(e) => {
                stats.skip(&place(origin), &format!("malformed JSON: {e}"));
                continue;
            }
        };
        stats.events += 1;
        if let Some(id) = doc["event"]["id"].as_str() {
            stats.last_event_id = id.to_string();
        }
        if let Some(t) = doc
            .get("@timestamp")
            .and_then(|t| parse_timestamp(t, TimestampFormat::Auto))
        {
            stats.newest_event_ms = stats.newest_event_ms.max(t / 1_000_000);
        }
        seen(&doc);
        for alert in engine.event(doc, origin) {
            raise(alert);
        }
    }
}

/// Where an event line came from, for messages: the file and the byte offset of the lines
/// fed (watch), or the topic, partition and offset of the message (stream).
fn place(origin: &EventOrigin) -> String {
    format!("{}@{}", origin.file, origin.offset)
}

/// Lines of a live input to ECS NDJSON: in the format given, or (`auto`) the one sniffed
/// from the first line that says something.
pub struct Convert {
    pub(crate) format: Option<Format>,
    pub(crate) options: ConvertOptions,
    /// The format's converter (none for ECS), once the format is known.
    pub(crate) converter: Option<Converter>,
    /// The file being read, and its lines fed so far (converters number lines per block).
    pub(crate) file: String,
    pub(crate) lines: u64,
    /// The clock of open events' deadlines.
    pub(crate) started: Instant,
    /// Who says what was sniffed (`unithunt watch`, `unithunt stream`).
    pub(crate) speaker: &'static str,
}

impl Convert {
    pub fn new(format: Option<Format>, this_host: bool) -> Convert {
        let options = ConvertOptions {
            this_host,
            ..ConvertOptions::default()
        };
        Convert {
            converter: format.and_then(|f| f.converter(&options)),
            format,
            options,
            file: String::new(),
            lines: 0,
            started: Instant::now(),
            speaker: "unithunt watch",
        }
    }

    /// The same, naming `speaker` in what it says (the format it sniffed).
    pub fn speaking_as(mut self, speaker: &'static str) -> Convert {
        self.speaker = speaker;
        self
    }

    /// Events whose records are still coming (only audit logs hold events open): a driver that
    /// commits input positions must not commit past their records.
    pub fn open_events(&self) -> usize {
        self.converter.as_ref().map_or(0, Converter::open_events)
    }

    /// Whole lines in, ECS NDJSON out (events complete so far).
    pub fn feed(&mut self, lines: &[u8], file: &str, out: &mut Vec<u8>, stats: &mut Stats) {
        if self.file != file {
            self.file = file.to_string();
            self.lines = 0;
        }
        let base = self.lines;
        self.lines += lines.iter().filter(|&&b| b == b'\n').count() as u64;
        let format = match self.format {
            Some(f) => f,
            None => match sniff_decided(lines) {
                Some(f) => {
                    eprintln!(
                        "{}: {} read as {} (sniffed)",
                        self.speaker,
                        escape(file),
                        f.name()
                    );
                    self.format = Some(f);
                    self.converter = f.converter(&self.options);
                    f
                }
                // Blank and comment lines only, so far: skipped in any format.
                None => {
                    stats.skipped += self.lines - base;
                    return;
                }
            },
        };
        let Some(c) = self.converter.as_mut() else {
            debug_assert_eq!(format, Format::Ecs);
            out.extend_from_slice(lines);
            return;
        };
        let now = self.started.elapsed().as_millis() as u64;
        c.set_clock(now);
        let b = c.convert(Block::from_lines(file.into(), lines, 0));
        if let Some(c) = &b.converted {
            for s in &c.skipped {
                stats.skip(&format!("{}:{}", s.file, base + s.line + 1), &s.reason);
            }
            // An event whose records came in two parts: said, with its file and line.
            for w in &c.warnings {
                eprintln!(
                    "warning: {}:{}: {}",
                    escape(&w.file),
                    base + w.line + 1,
                    escape(&w.reason)
                );
            }
        }
        out.extend_from_slice(&b.data);
        c.close_settled(now, IDLE_FLUSH.as_millis() as u64, out);
    }

    /// Closes the open events whose newest record is [`IDLE_FLUSH`] old, whatever else keeps
    /// arriving (a log that is never idle still alerts within that).
    pub fn settle(&mut self, out: &mut Vec<u8>) {
        let now = self.started.elapsed().as_millis() as u64;
        if let Some(c) = self.converter.as_mut() {
            c.close_settled(now, IDLE_FLUSH.as_millis() as u64, out);
        }
    }

    /// Closes what is open (a pause in the input, the end of a file).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some(c) = self.converter.as_mut() {
            c.flush_open(out);
        }
    }
}

/// Everything one watch holds.
pub struct Watch {
    /// Alerts on stdout as they are raised (none with `-o none`).
    pub(crate) printer: Option<LinePrinter<std::io::Stdout>>,
    pub(crate) engine: LiveDetector,
    pub(crate) convert: Convert,
    pub(crate) journal: Journal,
    pub(crate) stats: Stats,
    /// Raise no alert (replay of what was read before the checkpoint's start is not needed
    /// here: the journal decides).
    pub(crate) quiet_stdout: bool,
    /// An alert could not be written to the journal (disk full, I/O error): watch stops with
    /// status 1 and does not save the checkpoint past the event, so that the next start raises
    /// the alert again.
    pub(crate) failed: bool,
}

impl Watch {
    /// A watch of input in `format` (sniffed when `None`) evaluated by `engine`, alerts going to
    /// `journal` and then `printer`. `this_host`: parents that started before the log are looked
    /// up in /proc.
    pub fn new(
        engine: LiveDetector,
        format: Option<Format>,
        this_host: bool,
        journal: Journal,
        printer: Option<LinePrinter<std::io::Stdout>>,
    ) -> Watch {
        Watch {
            printer,
            engine,
            convert: Convert::new(format, this_host),
            journal,
            stats: Stats::default(),
            quiet_stdout: false,
            failed: false,
        }
    }

    /// The journal (to sync it when watch ends).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Feeds whole lines from `file` (at `offset`).
    fn feed(&mut self, lines: &[u8], file: &str, offset: u64) {
        // A byte order mark where the file begins is not part of its first line (as in
        // BlockReader, which scan and convert read through).
        let lines = match lines.strip_prefix(unithunt_readers::UTF8_BOM) {
            Some(rest) if offset == 0 => rest,
            _ => lines,
        };
        self.stats.lines += lines.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut ecs = Vec::new();
        self.convert.feed(lines, file, &mut ecs, &mut self.stats);
        self.events(&ecs, file, offset);
    }

    fn flush(&mut self, file: &str, offset: u64) {
        let mut ecs = Vec::new();
        self.convert.flush(&mut ecs);
        self.events(&ecs, file, offset);
    }

    /// Closes the events quiet for [`IDLE_FLUSH`] (see [`Convert::settle`]).
    fn settle(&mut self, file: &str, offset: u64) {
        let mut ecs = Vec::new();
        self.convert.settle(&mut ecs);
        if !ecs.is_empty() {
            self.events(&ecs, file, offset);
        }
    }

    fn events(&mut self, ecs: &[u8], file: &str, offset: u64) {
        let origin = EventOrigin {
            file: file.to_string(),
            offset,
        };
        let mut alerts = Vec::new();
        let mut seen = |_: &Json| {};
        detect_events(
            &mut self.engine,
            ecs,
            &origin,
            &mut self.stats,
            &mut seen,
            &mut |a| alerts.push(a),
        );
        for alert in alerts {
            self.raise(alert);
        }
    }

    fn raise(&mut self, mut alert: Json) {
        let Some(uuid) = alert["kibana.alert.uuid"].as_str().map(str::to_string) else {
            return;
        };
        if self.journal.contains(&uuid) {
            self.stats.duplicates += 1;
            return;
        }
        // When unithunt raised it (Elastic's field for an alert's creation).
        alert["kibana.alert.start"] = json!(unithunt_event::format_iso_ms(now_ms()));
        if self.failed {
            return;
        }
        // The journal first (the sink every other one ships from), then stdout.
        if let Err(e) = self.journal.alert(&alert) {
            eprintln!(
                "error: alert journal {}: {e}: watch stops (the checkpoint is not advanced, so the next start raises this alert again)",
                escape(&self.journal.path.to_string_lossy())
            );
            self.failed = true;
            return;
        }
        self.stats.alerts += 1;
        if !self.quiet_stdout {
            if let Some(p) = self.printer.as_mut() {
                // Stdout going away (`| head`) does not stop detection: the journal has it.
                let _ = p.alert(&alert);
            }
        }
    }

    pub fn stats_line(&self, started: Instant) -> String {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let lag = if self.stats.newest_event_ms > 0 {
            human_age((now_ms() - self.stats.newest_event_ms).max(0))
        } else {
            "-".into()
        };
        format!(
            "unithunt watch: {} lines, {} events ({:.0}/s), {} alerts ({} already raised), {} skipped; newest event {lag} old",
            self.stats.lines,
            self.stats.events,
            self.stats.events as f64 / secs,
            self.stats.alerts,
            self.stats.duplicates,
            self.stats.skipped,
        )
    }
}

/// An age as people read it: `850 ms`, `12.4 s`, `7 min 3 s`, `3 h 12 min`, `5 d 22 h`.
pub fn human_age(ms: i64) -> String {
    let s = ms / 1000;
    match ms {
        ..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..=86_399_999 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod age_tests {
    use super::human_age;

    /// Issue 19, item 16: "newest event 513133502 ms old" reads as days and hours.
    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(human_age(850), "850 ms");
        assert_eq!(human_age(12_400), "12.4 s");
        assert_eq!(human_age(423_000), "7 min 3 s");
        assert_eq!(human_age(11_520_000), "3 h 12 min");
        assert_eq!(human_age(513_133_502), "5 d 22 h");
    }
}
