//! Raw audit logs (`/var/log/audit/audit.log`, RAW or ENRICHED) to ECS events.
//!
//! Records are grouped into events by `msg=audit(SEC.MSEC:SERIAL)` (and `node=`): an event is
//! complete at its `EOE` record, when it is a user-space message (one record), or once
//! [`REORDER_WINDOW`] newer events have begun (records of one event may be interleaved with
//! others', and auditd does not write `EOE` to its log). Complete events leave in the order they
//! began, each as one ECS document ([`ecs::to_ecs`]), with parents filled from the
//! [`proctable::ProcessTable`] the stream builds.
//!
//! Accounting: every input line is a record of an event or is skipped with `file:line` and why.
//! Events still open at the end of a file are closed there (a log that rotated mid-event gives two
//! partial events, each accounted for); the process table carries over to the next file, as
//! rotated logs continue one another.

pub mod ecs;
pub mod proctable;
pub mod record;

use crate::doc::Doc;
use crate::{pooled_buffer, Block, Converted, EventScreen, Skipped};
use proctable::ProcessTable;
use std::collections::VecDeque;

/// Events open at once before the oldest is taken as complete.
pub const REORDER_WINDOW: usize = 64;
/// Records one event may gather; past it the event is closed (a runaway serial reused forever).
pub const MAX_RECORDS: usize = 4096;
/// Processes the ancestry table remembers.
pub const PROCESS_TABLE: usize = 32_768;

/// True when the text starts like an audit log (`type=` or `node=` on the first line).
pub fn sniff(text: &[u8]) -> bool {
    let t = text.trim_ascii_start();
    t.starts_with(b"type=")
        || (t.starts_with(b"node=") && memchr::memmem::find(t, b" type=").is_some())
}

struct OpenEvent {
    key: EventKey,
    /// The event's records, one line each as `TYPE BODY\n` (the header, the same for all of
    /// them, is in `key`), in one buffer: one allocation per event rather than per record, and
    /// no header read twice.
    text: String,
    records: usize,
    complete: bool,
    /// Began with a user-space message type.
    standalone: bool,
}

/// Turns audit log text, block by block, into ECS NDJSON.
pub struct AuditTranscoder {
    open: VecDeque<OpenEvent>,
    /// Open events that began with a user-space message (most lines need not look for them).
    standalone_open: usize,
    table: ProcessTable,
    /// Lines seen so far in the current file.
    pub lines: u64,
    /// Events written so far.
    pub events: u64,
    /// Keep each event's records under `auditd.records` (on by default).
    pub raw_records: bool,
    /// Leave the formatting of events to whoever scans the block ([`Block::format_deferred`]):
    /// only grouping and the process table need the stream in order, so formatting can run on
    /// every core.
    pub defer_format: bool,
    /// When set, events are written only if it says a rule may match them (a scan); the others
    /// are counted in [`Converted::screened`].
    pub screen: Option<EventScreen>,
    /// Events screened out since the last block was made.
    screened: u64,
    pending: Vec<Pending>,
}

/// What the records of one event share: their header but for the type.
struct EventKey {
    node: Option<String>,
    /// `SEC.MSEC:SERIAL` as written (with `node`, what groups records).
    id: String,
    serial: u64,
    time_ms: i64,
}

impl EventKey {
    fn matches(&self, h: &record::Header<'_>) -> bool {
        // The serial first: cheaper than the text.
        self.serial == h.serial && self.id == h.id && self.node.as_deref() == h.node
    }
}

/// A complete event whose ECS is not written yet: its records and what the process table said of
/// it.
pub struct Pending {
    key: EventKey,
    text: String,
    ctx: ecs::Context,
}

/// The events of a converted block, to be formatted where the block is scanned.
pub struct Deferred {
    events: Vec<Pending>,
    raw_records: bool,
    screen: Option<EventScreen>,
}

/// The record types the ECS mapping reads (besides an event's first record): the others are split
/// into fields only when the raw records are kept.
const MAPPED: [&str; 6] = ["SYSCALL", "EXECVE", "PROCTITLE", "CWD", "PATH", "SOCKADDR"];

/// The records of an event (of the types `want` accepts, and always the first).
fn records_of<'a>(
    key: &'a EventKey,
    text: &'a str,
    want: impl Fn(&str) -> bool,
) -> Vec<record::Record<'a>> {
    let stamp = &key.id[..key.id.find(':').unwrap_or(key.id.len())];
    text.split_terminator('\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let (rtype, body) = line.split_once(' ').unwrap_or((line, ""));
            (i == 0 || want(rtype)).then(|| {
                record::Record::from_body(
                    key.node.as_deref(),
                    rtype,
                    stamp,
                    key.time_ms,
                    key.serial,
                    body,
                )
            })
        })
        .collect()
}

impl Deferred {
    /// Appends each event's ECS document as a line (those the screen lets through); returns how
    /// many the screen held back.
    pub fn write(&self, out: &mut Vec<u8>) -> u64 {
        let mut screened = 0;
        for ev in &self.events {
            let raw = self.raw_records;
            let records = records_of(&ev.key, &ev.text, |t| raw || MAPPED.contains(&t));
            if records.is_empty() {
                continue;
            }
            let written = write_event(
                &records,
                &ev.ctx,
                self.raw_records,
                self.screen.as_ref(),
                out,
            );
            screened += u64::from(!written);
        }
        screened
    }
}

/// Writes an event as a line, unless `screen` finds that no rule can match it; true if written.
fn write_event(
    records: &[record::Record<'_>],
    ctx: &ecs::Context,
    raw_records: bool,
    screen: Option<&EventScreen>,
    out: &mut Vec<u8>,
) -> bool {
    if let Some(s) = screen {
        let read = ecs::format_into(Doc::reading(s.reads.clone()), records, ctx, raw_records);
        if !(s.may_match)(&read.into_json_tree()) {
            return false;
        }
    }
    ecs::format(records, ctx, raw_records).write_json(out);
    out.push(b'\n');
    true
}

impl Default for AuditTranscoder {
    fn default() -> Self {
        AuditTranscoder::new()
    }
}

/// User-space and daemon messages: one record each, plus at most the kernel's SYSCALL (and
/// SOCKADDR) records of the `sendto` that carried them, right after.
fn is_standalone(rtype: &str) -> bool {
    const PREFIXES: [&str; 6] = ["USER_", "CRED_", "DAEMON_", "SERVICE_", "SYSTEM_", "ACCT_"];
    const TYPES: [&str; 11] = [
        "ADD_USER",
        "DEL_USER",
        "ADD_GROUP",
        "DEL_GROUP",
        "GRP_MGMT",
        "GRP_CHAUTHTOK",
        "CHUSER_ID",
        "CHGRP_ID",
        "ROLE_ASSIGN",
        "ROLE_REMOVE",
        "ANOM_LOGIN_FAILURES",
    ];
    PREFIXES.iter().any(|p| rtype.starts_with(p)) || TYPES.contains(&rtype)
}

impl AuditTranscoder {
    /// For this host's own logs: unknown parents are looked up in `/proc` (see
    /// [`proctable::ProcRoot`]).
    pub fn for_this_host() -> AuditTranscoder {
        let mut t = AuditTranscoder::new();
        t.table = ProcessTable::new(PROCESS_TABLE).with_proc(proctable::ProcRoot::host());
        t
    }

    pub fn new() -> AuditTranscoder {
        AuditTranscoder {
            open: VecDeque::new(),
            standalone_open: 0,
            table: ProcessTable::new(PROCESS_TABLE),
            lines: 0,
            events: 0,
            raw_records: true,
            defer_format: false,
            screen: None,
            screened: 0,
            pending: Vec::new(),
        }
    }

    /// Feeds whole lines; complete events are appended to `out` as NDJSON, skipped lines to
    /// `skipped` (line numbers are absolute within the file).
    pub fn feed(&mut self, text: &[u8], file: &str, out: &mut Vec<u8>, skipped: &mut Vec<Skipped>) {
        // Checked once for the whole block (lines of valid text are valid: they end at ASCII
        // bytes); line by line only when some line is not, to say which.
        let valid = std::str::from_utf8(text).ok();
        let mut at = 0;
        while at < text.len() {
            let mut end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
            let start = at;
            at = end + 1;
            self.lines += 1;
            if end > start && text[end - 1] == b'\r' {
                end -= 1;
            }
            let checked = match valid {
                Some(v) => Ok(&v[start..end]),
                None => std::str::from_utf8(&text[start..end]),
            };
            let line = match checked {
                Ok(l) => l,
                Err(e) => {
                    skipped.push(Skipped {
                        file: file.to_string(),
                        line: self.lines,
                        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    });
                    continue;
                }
            };
            if line.trim().is_empty() {
                skipped.push(Skipped {
                    file: file.to_string(),
                    line: self.lines,
                    reason: "blank line".into(),
                });
                continue;
            }
            let h = match record::parse_header(line) {
                Ok(h) => h,
                Err(why) => {
                    skipped.push(Skipped {
                        file: file.to_string(),
                        line: self.lines,
                        reason: why,
                    });
                    continue;
                }
            };
            let eoe = h.rtype == "EOE";
            let standalone = is_standalone(h.rtype);
            let push_record = |text: &mut String| {
                text.push_str(h.rtype);
                text.push(' ');
                text.push_str(h.body);
                text.push('\n');
            };
            let at = match self.open.iter().rposition(|e| e.key.matches(&h)) {
                Some(i) => {
                    let ev = &mut self.open[i];
                    if !eoe {
                        push_record(&mut ev.text);
                        ev.records += 1;
                    }
                    if eoe || ev.records >= MAX_RECORDS {
                        ev.complete = true;
                    }
                    i
                }
                None => {
                    let mut text = String::new();
                    if !eoe {
                        text.reserve(4 * line.len());
                        push_record(&mut text);
                    }
                    self.open.push_back(OpenEvent {
                        key: EventKey {
                            node: h.node.map(str::to_string),
                            id: h.id.to_string(),
                            serial: h.serial,
                            time_ms: h.time_ms,
                        },
                        text,
                        records: usize::from(!eoe),
                        complete: eoe,
                        standalone,
                    });
                    self.standalone_open += usize::from(standalone);
                    self.open.len() - 1
                }
            };
            // A user-space message is complete once a record of another event follows it (the
            // kernel may add a SYSCALL record to it, right after).
            if self.standalone_open > 0 {
                for (j, ev) in self.open.iter_mut().enumerate() {
                    if j != at && ev.standalone && !ev.complete {
                        ev.complete = true;
                    }
                }
            }
            while self.open.len() > REORDER_WINDOW || self.open.front().is_some_and(|e| e.complete)
            {
                let ev = self.open.pop_front().expect("non-empty");
                self.emit(ev, out);
            }
        }
    }

    /// Converts a block of audit log lines into a block of ECS NDJSON (events complete so far).
    pub fn convert(&mut self, raw: Block) -> Block {
        let first_line = self.lines;
        let mut out = pooled_buffer();
        // ECS is about twice the audit text: size the buffer once (growing it page-faults anew).
        out.reserve(raw.data.len() * 2 + 4096);
        let mut skipped = crate::oversized_skips(&raw, &mut self.lines, first_line);
        let mut fed = Vec::new();
        self.feed(&raw.data, &raw.file, &mut out, &mut fed);
        skipped.extend(fed.into_iter().map(|mut s| {
            s.line -= first_line + 1;
            s
        }));
        let lines = self.lines - first_line;
        let mut block = Block::from_converted(
            raw.file.clone(),
            out,
            raw.offset,
            Converted {
                lines,
                skipped,
                screened: std::mem::take(&mut self.screened),
            },
        );
        self.attach_pending(&mut block);
        block
    }

    /// The events still open at the end of a file, as a last block; the next file numbers its
    /// lines from 1.
    pub fn finish_file(&mut self, file: std::sync::Arc<str>, offset: u64) -> Block {
        let mut out = pooled_buffer();
        self.flush(&mut out);
        self.lines = 0;
        let converted = Converted {
            screened: std::mem::take(&mut self.screened),
            ..Converted::default()
        };
        let mut block = Block::from_converted(file, out, offset, converted);
        self.attach_pending(&mut block);
        block
    }

    fn attach_pending(&mut self, block: &mut Block) {
        if !self.pending.is_empty() {
            block.deferred = Some(Deferred {
                events: std::mem::take(&mut self.pending),
                raw_records: self.raw_records,
                screen: self.screen.clone(),
            });
        }
    }

    /// Closes every open event (end of input).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        while let Some(ev) = self.open.pop_front() {
            self.emit(ev, out);
        }
    }

    fn emit(&mut self, ev: OpenEvent, out: &mut Vec<u8>) {
        self.standalone_open -= usize::from(ev.standalone);
        // An EOE alone (its records were in a rotated file) carries nothing: it was counted as a
        // line of the event that ended there.
        if ev.records == 0 {
            return;
        }
        self.events += 1;
        if self.defer_format {
            // Only what the process table needs is read here: the first record (event id and
            // time), SYSCALL, EXECVE and PROCTITLE; the rest is read where the event is written.
            let records = records_of(&ev.key, &ev.text, |t| {
                matches!(t, "SYSCALL" | "EXECVE" | "PROCTITLE")
            });
            let ctx = ecs::learn(&records, &mut self.table);
            drop(records);
            self.pending.push(Pending {
                key: ev.key,
                text: ev.text,
                ctx,
            });
            return;
        }
        let raw = self.raw_records;
        let records = records_of(&ev.key, &ev.text, |t| raw || MAPPED.contains(&t));
        if records.is_empty() {
            return;
        }
        let ctx = ecs::learn(&records, &mut self.table);
        let written = write_event(&records, &ctx, self.raw_records, self.screen.as_ref(), out);
        self.screened += u64::from(!written);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    fn run(text: &str) -> (Vec<Json>, Vec<Skipped>, u64) {
        let mut t = AuditTranscoder::new();
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        t.feed(text.as_bytes(), "audit.log", &mut out, &mut skipped);
        t.flush(&mut out);
        let docs = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        (docs, skipped, t.lines)
    }

    const EXEC: &str = "type=SYSCALL msg=audit(1795806430.136:6399): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=22865 pid=22866 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"systemctl\" exe=\"/usr/bin/systemctl\" key=\"exec\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\"
type=EXECVE msg=audit(1795806430.136:6399): argc=2 a0=\"systemctl\" a1=\"daemon-reload\"
type=CWD msg=audit(1795806430.136:6399): cwd=\"/tmp\"
type=PATH msg=audit(1795806430.136:6399): item=0 name=\"/usr/bin/systemctl\" inode=247804 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL
type=PROCTITLE msg=audit(1795806430.136:6399): proctitle=73797374656D63746C006461656D6F6E2D72656C6F6164
";

    const SHELL: &str = "type=SYSCALL msg=audit(1795806430.100:6392): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=22829 pid=22865 uid=0 comm=\"bash\" exe=\"/usr/bin/bash\" key=\"exec\"
type=EXECVE msg=audit(1795806430.100:6392): argc=3 a0=\"bash\" a1=\"-c\" a2=6563686F2068692026262073797374656D63746C206461656D6F6E2D72656C6F6164
type=CWD msg=audit(1795806430.100:6392): cwd=\"/tmp\"
";

    #[test]
    fn execve_becomes_a_process_start_with_its_parent() {
        let (docs, skipped, lines) = run(&format!("{SHELL}{EXEC}"));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!((docs.len(), lines), (2, 8));
        let d = &docs[1];
        assert_eq!(d["event"]["category"], serde_json::json!(["process"]));
        assert_eq!(d["event"]["type"], serde_json::json!(["start"]));
        assert_eq!(d["event"]["id"], "1795806430.136:6399");
        assert_eq!(d["event"]["sequence"], 6399);
        assert_eq!(d["@timestamp"], "2026-11-27T19:07:10.136Z");
        assert_eq!(d["process"]["name"], "systemctl");
        assert_eq!(
            d["process"]["args"],
            serde_json::json!(["systemctl", "daemon-reload"])
        );
        assert_eq!(d["process"]["command_line"], "systemctl daemon-reload");
        assert_eq!(d["process"]["working_directory"], "/tmp");
        assert_eq!(d["process"]["parent"]["name"], "bash");
        assert_eq!(
            d["process"]["parent"]["command_line"],
            "bash -c echo hi && systemctl daemon-reload"
        );
        assert_eq!(d["user"]["id"], "0");
        assert_eq!(d["user"]["name"], "root");
        assert_eq!(d["tags"], serde_json::json!(["exec"]));
        assert_eq!(d["auditd"]["records"][1]["a1"], "daemon-reload");
    }

    #[test]
    fn interleaved_records_and_eoe_group_by_serial() {
        let a = SHELL.lines().collect::<Vec<_>>();
        let b = EXEC.lines().collect::<Vec<_>>();
        let mixed = [a[0], b[0], a[1], b[1], b[2], a[2], b[3], b[4]].join("\n")
            + "\ntype=EOE msg=audit(1795806430.136:6399): \n";
        let (docs, skipped, lines) = run(&mixed);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!((docs.len(), lines), (2, 9));
        assert_eq!(docs[0]["process"]["name"], "bash");
        assert_eq!(docs[1]["process"]["args"][1], "daemon-reload");
    }

    #[test]
    fn broken_lines_are_counted_with_their_reasons() {
        let text = format!("{SHELL}garbage here\n\ntype=PATH msg=audit(oops): x=1\n{EXEC}");
        let (docs, skipped, lines) = run(&text);
        assert_eq!(docs.len(), 2);
        assert_eq!(lines, 11);
        let at: Vec<(u64, &str)> = skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(at.len(), 3, "{at:?}");
        assert_eq!(at[0].0, 4);
        assert!(at[0].1.contains("type="), "{at:?}");
        assert_eq!(at[1], (5, "blank line"));
        assert_eq!(at[2].0, 6);
    }
}
