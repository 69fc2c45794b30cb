//! Raw audit logs (`/var/log/audit/audit.log`, RAW or ENRICHED) to ECS events.
//!
//! Records are grouped into events by `msg=audit(SEC.MSEC:SERIAL)` (and `node=`): an event is
//! complete at its `EOE` record, when it is a user-space message (one record), or once a record
//! of the same node stamped more than [`SETTLE_MS`] away from it arrives and [`SETTLE_RECORDS`]
//! records have been read since its newest one (auditd's own `end_of_event_timeout`, 2 s by
//! default, is the time half of that rule; the count half tolerates records a little out of
//! order, and a long syscall, stamped at its entry, whose records come at its exit). auditd does
//! not write `EOE` to its log, and records of one event may be interleaved with any number of
//! others' on a busy host: no count of newer events closes an event. Open
//! events are bounded by memory, not by a count of newer events: past [`MAX_OPEN_EVENTS`] open
//! events or [`MAX_OPEN_BYTES`] of their text the oldest is closed early, and a record that
//! arrives for an event already closed is read as a second part of it and reported (a *split*,
//! named with its file and line in [`AuditTranscoder::warnings`]), never lost in silence.
//! Complete events leave in the order they began, each as one ECS document ([`ecs::to_ecs`]),
//! with parents filled from the [`proctable::ProcessTable`] the stream builds.
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

/// An open event is complete once a record of its node stamped this far from it arrives (auditd.conf's
/// `end_of_event_timeout` default): the kernel writes all records of an event at the syscall's exit,
/// so a record stamped 2 s later was made after all of them.
pub const SETTLE_MS: i64 = 2_000;
/// ...and once this many records were read since the event's newest record.
pub const SETTLE_RECORDS: u64 = 64;
/// Open events at once before the oldest is closed early (and a late record of it reported as a
/// split): a memory bound, far above what interleaving on a real host needs.
pub const MAX_OPEN_EVENTS: usize = 16_384;
/// Bytes of records held by open events before the oldest is closed early.
pub const MAX_OPEN_BYTES: usize = 16 << 20;
/// Closed events whose keys are remembered, to recognise a late record of one.
const CLOSED_REMEMBERED: usize = 4_096;
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
    /// The line of its newest record.
    last_line: u64,
    /// [`AuditTranscoder::clock_ms`] when its newest record was read.
    touched_ms: u64,
    complete: bool,
}

/// Turns audit log text, block by block, into ECS NDJSON.
pub struct AuditTranscoder {
    open: VecDeque<OpenEvent>,
    /// Where each open event is in `open`, by [`EventKey::hash`]: `open_base` + its index. A hash
    /// shared by two open events (the same serial on two nodes) points at the newer one; the other
    /// is found by a scan.
    open_index: std::collections::HashMap<u64, u64>,
    /// The sequence number of `open[0]`.
    open_base: u64,
    /// Bytes of record text the open events hold.
    open_bytes: usize,
    /// The last [`CLOSED_REMEMBERED`] events closed, as (hash, sequence number), oldest first, and
    /// by hash the sequence number and time of the newest of them: a record that arrives for one
    /// of them is a split, not a new event.
    closed: VecDeque<(u64, u64)>,
    closed_index: std::collections::HashMap<u64, (u64, i64)>,
    /// Events whose records came in two parts (a record after the event was closed).
    pub splits: u64,
    /// What was read but is worth a word (a split event), with file and line; drained into each
    /// converted block's [`Converted::warnings`].
    pub warnings: Vec<Skipped>,
    /// Open events that began with a user-space message and are not complete yet, by sequence
    /// number (most lines need not look for them, and never through the whole window).
    standalone_waiting: Vec<u64>,
    table: ProcessTable,
    /// Lines seen so far in the current file.
    pub lines: u64,
    /// Events written so far.
    pub events: u64,
    /// A follower's clock (milliseconds, monotonic), set before it feeds lines: each open event
    /// notes when its newest record came, for [`AuditTranscoder::close_settled`].
    pub clock_ms: u64,
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

    /// The serial, mixed with the node's name when there is one (aggregated logs reuse serials).
    fn hash_of(node: Option<&str>, serial: u64) -> u64 {
        match node {
            None => serial,
            Some(n) => {
                use std::hash::{BuildHasher, BuildHasherDefault};
                let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
                serial ^ h.hash_one(n).rotate_left(17)
            }
        }
    }

    fn hash(&self) -> u64 {
        EventKey::hash_of(self.node.as_deref(), self.serial)
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
            open_index: std::collections::HashMap::default(),
            open_base: 0,
            open_bytes: 0,
            closed: VecDeque::new(),
            closed_index: std::collections::HashMap::default(),
            splits: 0,
            warnings: Vec::new(),
            standalone_waiting: Vec::new(),
            table: ProcessTable::new(PROCESS_TABLE),
            lines: 0,
            events: 0,
            clock_ms: 0,
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
            if line.trim().is_empty() || crate::format::is_comment(line.as_bytes()) {
                let reason = if line.trim().is_empty() {
                    "blank line"
                } else {
                    crate::format::COMMENT
                };
                skipped.push(Skipped {
                    file: file.to_string(),
                    line: self.lines,
                    reason: reason.into(),
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
            let at = self.place(&h, line, file);
            self.complete_standalone(at);
            self.emit_settled(&h, out);
        }
    }

    /// Adds a record to its open event, or opens one (noting a split when the event was closed
    /// already); returns the event's index in the window.
    fn place(&mut self, h: &record::Header<'_>, line: &str, file: &str) -> usize {
        let eoe = h.rtype == "EOE";
        let push_record = |text: &mut String| {
            text.push_str(h.rtype);
            text.push(' ');
            text.push_str(h.body);
            text.push('\n');
        };
        if let Some(i) = self.find_open(h) {
            let ev = &mut self.open[i];
            if !eoe {
                let before = ev.text.len();
                push_record(&mut ev.text);
                self.open_bytes += ev.text.len() - before;
                ev.records += 1;
                ev.last_line = self.lines;
                ev.touched_ms = self.clock_ms;
            }
            if eoe || ev.records >= MAX_RECORDS {
                ev.complete = true;
            }
            return i;
        }
        let hash = EventKey::hash_of(h.node, h.serial);
        if self
            .closed_index
            .get(&hash)
            .is_some_and(|&(_, t)| t == h.time_ms)
        {
            self.note_split(h, file);
        }
        let mut text = String::new();
        if !eoe {
            text.reserve(4 * line.len());
            push_record(&mut text);
        }
        self.open_bytes += text.len();
        let key = EventKey {
            node: h.node.map(str::to_string),
            id: h.id.to_string(),
            serial: h.serial,
            time_ms: h.time_ms,
        };
        let seq = self.open_base + self.open.len() as u64;
        self.open_index.insert(hash, seq);
        self.open.push_back(OpenEvent {
            key,
            text,
            records: usize::from(!eoe),
            last_line: self.lines,
            touched_ms: self.clock_ms,
            complete: eoe,
        });
        if is_standalone(h.rtype) && !eoe {
            self.standalone_waiting.push(seq);
        }
        self.open.len() - 1
    }

    /// A record of an event already closed: counted, and said with its line (kept until the
    /// block is made, a `watch` drains them as it goes; past the report limit only counted).
    fn note_split(&mut self, h: &record::Header<'_>, file: &str) {
        self.splits += 1;
        if self.warnings.len() < crate::MAX_REPORTED {
            self.warnings.push(Skipped {
                file: file.to_string(),
                line: self.lines,
                reason: format!(
                    "a {} record of audit event {} came after the event was closed (interleaved \
                     past the {MAX_OPEN_EVENTS}-event or {} MiB bound, or after its EOE): read as a \
                     second part of it",
                    h.rtype,
                    h.id,
                    MAX_OPEN_BYTES >> 20
                ),
            });
        }
    }

    /// A user-space message is complete once a record of another event follows it (the kernel
    /// may add a SYSCALL record to it, right after): `at` is the event that record went to.
    fn complete_standalone(&mut self, at: usize) {
        if self.standalone_waiting.is_empty() {
            return;
        }
        let current = self.open_base + at as u64;
        let (open, base) = (&mut self.open, self.open_base);
        self.standalone_waiting.retain(|&seq| {
            if seq == current {
                return true;
            }
            // (An event already gone, at the memory bound, needs nothing.)
            if let Some(ev) = seq.checked_sub(base).and_then(|i| open.get_mut(i as usize)) {
                ev.complete = true;
            }
            false
        });
    }

    /// Emits the oldest events while they are complete: at EOE, or once a record of their node
    /// is stamped far from them (later, or earlier: a clock stepped back, or logs joined end to
    /// end) and they have had no record for a while; or past the memory bound.
    fn emit_settled(&mut self, h: &record::Header<'_>, out: &mut Vec<u8>) {
        while let Some(front) = self.open.front() {
            let settled = front.complete
                || (front.key.node.as_deref() == h.node
                    && (h.time_ms - front.key.time_ms).abs() > SETTLE_MS
                    && self.lines - front.last_line >= SETTLE_RECORDS);
            if !settled && self.open.len() <= MAX_OPEN_EVENTS && self.open_bytes <= MAX_OPEN_BYTES {
                break;
            }
            let ev = self.pop_open();
            self.emit(ev, out);
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
        let relative = |mut s: Skipped| {
            s.line -= first_line + 1;
            s
        };
        skipped.extend(fed.into_iter().map(relative));
        let warnings = self.warnings.drain(..).map(relative).collect();
        let lines = self.lines - first_line;
        let mut block = Block::from_converted(
            raw.file.clone(),
            out,
            raw.offset,
            Converted {
                lines,
                skipped,
                warnings,
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
        while !self.open.is_empty() {
            let ev = self.pop_open();
            self.emit(ev, out);
        }
    }

    /// Events open, waiting for more records.
    pub fn open_events(&self) -> usize {
        self.open.len()
    }

    /// For a follower: closes, oldest first, the events whose newest record came `age_ms` or more
    /// before `now_ms` (a live log: the kernel writes an event's records together, so one quiet
    /// that long is complete), whatever else keeps arriving. Stops at the first one still young,
    /// as events leave in the order they began.
    pub fn close_settled(&mut self, now_ms: u64, age_ms: u64, out: &mut Vec<u8>) {
        while self
            .open
            .front()
            .is_some_and(|e| e.complete || now_ms.saturating_sub(e.touched_ms) >= age_ms)
        {
            let ev = self.pop_open();
            self.emit(ev, out);
        }
    }

    /// Where the open event of this record's header is: the newest event first (most records
    /// continue it), then by its hash.
    fn find_open(&self, h: &record::Header<'_>) -> Option<usize> {
        if self.open.back()?.key.matches(h) {
            return Some(self.open.len() - 1);
        }
        let hash = EventKey::hash_of(h.node, h.serial);
        let seq = *self.open_index.get(&hash)?;
        let i = usize::try_from(seq.checked_sub(self.open_base)?).ok()?;
        if self.open.get(i).is_some_and(|e| e.key.matches(h)) {
            return Some(i);
        }
        // Two open events share the hash (the same serial on two nodes): look for it.
        self.open.iter().rposition(|e| e.key.matches(h))
    }

    /// Takes the oldest open event out of the window, remembering its key (for a late record).
    fn pop_open(&mut self) -> OpenEvent {
        let ev = self.open.pop_front().expect("an open event");
        let hash = ev.key.hash();
        if self.open_index.get(&hash) == Some(&self.open_base) {
            self.open_index.remove(&hash);
        }
        let seq = self.open_base;
        self.open_base += 1;
        self.open_bytes -= ev.text.len();
        // Remembered by hash and time, not by the whole key: no allocation per event (the
        // serial, node and millisecond together name an event; a false match needs a serial
        // reused within the last few thousand events at the same millisecond).
        self.closed_index.insert(hash, (seq, ev.key.time_ms));
        self.closed.push_back((hash, seq));
        if self.closed.len() > CLOSED_REMEMBERED {
            let (old, old_seq) = self.closed.pop_front().expect("non-empty");
            if self
                .closed_index
                .get(&old)
                .is_some_and(|&(s, _)| s == old_seq)
            {
                self.closed_index.remove(&old);
            }
        }
        ev
    }

    fn emit(&mut self, ev: OpenEvent, out: &mut Vec<u8>) {
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

    /// The syscall records of one event (no EOE, as auditd writes its log) at a time and serial.
    fn syscall(sec: u64, serial: u64) -> String {
        format!("type=SYSCALL msg=audit({sec}.000:{serial}): arch=c000003e syscall=0 success=yes exit=0 items=0 ppid=1 pid={serial} uid=0 comm=\"cat\" exe=\"/usr/bin/cat\" key=(null)\n")
    }

    /// `n` records of the event `serial` at `sec` (one SYSCALL, then CWD records).
    fn records(sec: u64, serial: u64, n: u64) -> String {
        let mut text = syscall(sec, serial);
        for _ in 1..n {
            text.push_str(&format!(
                "type=CWD msg=audit({sec}.000:{serial}): cwd=\"/\"\n"
            ));
        }
        text
    }

    #[test]
    fn an_event_settles_once_records_two_seconds_away_arrive() {
        let mut t = AuditTranscoder::new();
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        let mut feed = |t: &mut AuditTranscoder, text: String| {
            t.feed(text.as_bytes(), "a", &mut out, &mut skipped);
            t.events
        };
        feed(&mut t, records(1000, 1, 1));
        // One second later: the first event may still get records, however many arrive.
        assert_eq!(feed(&mut t, records(1001, 2, 10)), 0);
        // Two seconds after it: a few records are not enough (records may be a little out of
        // order, and a long syscall's records come at its exit)...
        assert_eq!(feed(&mut t, records(1003, 3, SETTLE_RECORDS - 11)), 0);
        // ...but the 64th since its newest record is.
        assert_eq!(feed(&mut t, records(1003, 3, 1)), 1);
        // A clock stepped back (or two logs joined): the far-away events settle too.
        assert_eq!(feed(&mut t, records(900, 4, SETTLE_RECORDS)), 3);
        assert!(skipped.is_empty() && t.warnings.is_empty());
    }

    #[test]
    fn open_events_are_bounded_and_a_late_record_is_a_reported_split() {
        let mut t = AuditTranscoder::new();
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        let mut text = syscall(1000, 1);
        for serial in 2..MAX_OPEN_EVENTS as u64 + 10 {
            text.push_str(&syscall(1000, serial));
        }
        t.feed(text.as_bytes(), "a", &mut out, &mut skipped);
        // The bound holds, oldest closed first.
        assert_eq!(t.open.len(), MAX_OPEN_EVENTS);
        assert_eq!(t.events, 9);
        assert_eq!(t.open_index.len(), MAX_OPEN_EVENTS);
        // A record of the first event, closed early, is a second part of it, said with its line.
        let late = "type=CWD msg=audit(1000.000:1): cwd=\"/\"\n";
        t.feed(late.as_bytes(), "a", &mut out, &mut skipped);
        assert_eq!(t.splits, 1);
        assert_eq!(t.warnings.len(), 1);
        assert_eq!(t.warnings[0].line, MAX_OPEN_EVENTS as u64 + 10);
        assert!(
            t.warnings[0].reason.contains("1000.000:1"),
            "{:?}",
            t.warnings
        );
        // Records of open events are found, whichever event they belong to.
        let mid = "type=CWD msg=audit(1000.000:5000): cwd=\"/\"\n";
        t.feed(mid.as_bytes(), "a", &mut out, &mut skipped);
        assert_eq!(t.splits, 1);
        let i = t
            .find_open(&record::parse_header(mid.trim_end()).unwrap())
            .unwrap();
        assert_eq!(t.open[i].records, 2);
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_follower_closes_events_quiet_for_a_while_whatever_else_arrives() {
        let mut t = AuditTranscoder::new();
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        t.clock_ms = 1_000;
        t.feed(records(1000, 1, 3).as_bytes(), "a", &mut out, &mut skipped);
        // 100 ms later another event arrives: the first is not quiet long enough yet.
        t.clock_ms = 1_100;
        t.feed(records(1000, 2, 1).as_bytes(), "a", &mut out, &mut skipped);
        t.close_settled(1_100, 250, &mut out);
        assert_eq!(t.events, 0);
        // 250 ms after its newest record the first is complete; the second (150 ms) is not.
        t.close_settled(1_250, 250, &mut out);
        assert_eq!(t.events, 1);
        // A record of the second event makes it young again.
        t.clock_ms = 1_300;
        t.feed(records(1000, 2, 1).as_bytes(), "a", &mut out, &mut skipped);
        t.close_settled(1_400, 250, &mut out);
        assert_eq!(t.events, 1);
        t.close_settled(1_550, 250, &mut out);
        assert_eq!(t.events, 2);
        assert!(skipped.is_empty() && t.warnings.is_empty());
    }
}
