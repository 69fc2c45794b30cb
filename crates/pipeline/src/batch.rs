//! The batch driver (`unithunt scan`): inputs cut into newline-aligned blocks, screened, parsed
//! and evaluated by rayon workers, the results merged in input order, so output is the same
//! whatever the thread count. Event rules alert on the workers; sequence, sample and correlated
//! rules send their matches to the merge, where the [`BatchDetector`] orders and runs them.
//!
//! [`BatchScan`] is the whole of it: [`BatchScan::scan`] one [`Input`] after another (one converter
//! per format across inputs: rotated logs continue one another), then [`BatchScan::finish`] for
//! what the sequence rules still hold and the accounting ([`ScanReport`]).

use rayon::prelude::*;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;
use unithunt_detect::BatchDetector;
use unithunt_engine::StageMask;
use unithunt_event::{
    lookup_one, parse_projected, parse_timestamp, FieldPath, Projection, TimestampFormat,
};
use unithunt_output::term::escape;
use unithunt_output::{render, AlertSink, OutputFormat, Printer, Rendered};
use unithunt_readers::{
    collect_document, is_response, Block, ConvertOptions, Converters, EventScreen, Format, Input,
    ReadStats, Skipped,
};
use unithunt_rules::alert::{event_alert, AlertTemplate, EventOrigin};
use unithunt_rules::RuleSet;

/// The size of the blocks inputs are cut into.
pub const BLOCK: usize = 1 << 20;
#[derive(Default)]
pub struct Counts {
    pub stats: ReadStats,
    /// Audit records grouped into events, and the events they made.
    pub converted_records: u64,
    pub converted_events: u64,
    /// Lines parsed as JSON; `lines == parsed + filtered + skipped` always holds.
    pub parsed: u64,
    pub no_time: u64,
    /// Warnings from the readers (an audit event in two parts): all counted, the first
    /// `MAX_REPORTED` kept with file and line.
    pub warned: u64,
    pub warnings: Vec<Skipped>,
}

/// What one block produced.
struct BlockResult {
    /// Events matching a stage of a sequence or sample rule: (byte offset of the line, rule
    /// index, stage mask, document), in input order.
    matches: Vec<(u64, usize, StageMask, Arc<Json>)>,
    /// Alerts of event rules, built and rendered on the worker: (rule index, rendered alert).
    alerts: Vec<(usize, Rendered)>,
    /// For JSON outputs: the alerts as NDJSON text in one buffer (one allocation per block, not
    /// per alert), and the rule of each line.
    json_lines: Vec<u8>,
    json_rules: Vec<usize>,
    lines: u64,
    /// Lines parsed as JSON (each yields one event, or several for a search response).
    parsed: u64,
    events: u64,
    /// Lines no rule can match, not parsed (their shape is checked).
    filtered: u64,
    skipped: Vec<Skipped>,
    /// Lines skipped beyond those in `skipped` (a malformed document counts all its lines).
    skipped_lines: u64,
    /// Lines read but worth a word (an audit event in two parts), numbered like `skipped`.
    warnings: Vec<Skipped>,
    /// For converted input (audit logs): source records grouped into events, and those events.
    converted_records: u64,
    converted_events: u64,
}

/// Output buffers travel from workers to the merge and back: big buffers taken fresh from the OS
/// each time cost more in page zeroing than the alerts cost to write.
static BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

impl BlockResult {
    /// An empty result standing for `lines` input lines.
    fn new(lines: u64) -> BlockResult {
        BlockResult {
            matches: Vec::new(),
            alerts: Vec::new(),
            json_lines: take_buffer(),
            json_rules: Vec::new(),
            lines,
            parsed: 0,
            events: 0,
            filtered: 0,
            skipped: Vec::new(),
            skipped_lines: 0,
            warnings: Vec::new(),
            converted_records: 0,
            converted_events: 0,
        }
    }
}

fn take_buffer() -> Vec<u8> {
    BUFFERS
        .lock()
        .ok()
        .and_then(|mut b| b.pop())
        .unwrap_or_default()
}

fn give_buffer(mut b: Vec<u8>) {
    b.clear();
    if let Ok(mut pool) = BUFFERS.lock() {
        if pool.len() < 2 * rayon::current_num_threads() {
            pool.push(b);
        }
    }
}

/// A counting semaphore: blocks read but not yet merged.
struct Gate {
    /// Blocks read but not merged, and whether the merging side has gone (see [`Gate::close`]).
    count: std::sync::Mutex<(usize, bool)>,
    freed: std::sync::Condvar,
    cap: usize,
}

impl Gate {
    fn new(cap: usize) -> Gate {
        Gate {
            count: std::sync::Mutex::new((0, false)),
            freed: std::sync::Condvar::new(),
            cap,
        }
    }

    /// Waits for room for one more block; `false` once the gate is closed (stop reading).
    fn acquire(&self) -> bool {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while n.0 >= self.cap && !n.1 {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        n.0 += 1;
        !n.1
    }

    fn release(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        n.0 = n.0.saturating_sub(1);
        self.freed.notify_one();
    }

    /// The merging side is gone (it finished, or it panicked): wake the reader for good. Without
    /// this a panic while merging left the reader waiting for room forever, and scan hung.
    fn close(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        n.1 = true;
        self.freed.notify_all();
    }
}

/// Closes a [`Gate`] when dropped, also while unwinding.
struct CloseOnDrop<'a>(&'a Gate);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn skip(out: &mut Vec<Skipped>, file: &str, line: u64, reason: String) {
    out.push(Skipped {
        file: file.to_string(),
        line,
        reason,
    });
}

/// What a worker needs to turn matches into output.
struct Ctx<'a> {
    set: &'a RuleSet,
    format: OutputFormat,
    /// Per rule: whether it alerts as events stream by (event rules without pipes).
    streaming: Vec<bool>,
    /// Per rule: its alerts' constant part, serialised once (JSON outputs write alerts directly).
    templates: Vec<AlertTemplate>,
    /// The fields all stage predicates read: candidate lines are first parsed to these only, and
    /// parsed whole when some rule matches (alerts carry the whole event). `None`: always whole.
    projection: Option<Projection>,
}

/// The audit converter's screen: an event is written (and then scanned) only if some stage
/// predicate holds on the members the rules read, decided as [`scan_line`] decides on a projected
/// line. `None` when the rules have no projection (they then see every event).
fn event_screen(set: &Arc<RuleSet>) -> Option<EventScreen> {
    let projection = Arc::new(set.projection()?);
    let set = Arc::clone(set);
    Some(EventScreen {
        reads: unithunt_readers::doc::PathSet::new(move |path: &str| projection.keeps(path)),
        may_match: Arc::new(move |event: &Json| set.may_match(event)),
    })
}

/// Evaluates a parsed line (an event, or a wrapped document of events); true if some rule matched.
fn evaluate_doc(
    cx: &Ctx<'_>,
    doc: Json,
    cands: &[usize],
    origin: EventOrigin,
    out: &mut BlockResult,
) -> bool {
    if is_response(&doc) || doc.get("_source").is_some() {
        let mut events = Vec::new();
        collect_document(doc, &mut events);
        let mut matched = false;
        for e in events {
            matched |= evaluate_one(cx, e, cx.set.all_stages(), &origin, out);
        }
        return matched;
    }
    evaluate_one(cx, doc, cands, &origin, out)
}

/// How often candidate lines turn out to match, per worker thread. The projected parse saves the
/// whole parse of candidates that match nothing, but is wasted work on those that match (they are
/// parsed again, whole, for the alert); it is used while fewer than half of recent candidates
/// matched. On the all-relevant benchmark (70% alert) it cost 25%; on typical data it saves most
/// of the parsing.
struct MatchRate;

impl MatchRate {
    thread_local! {
        static COUNTS: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
    }

    fn projection_pays() -> bool {
        Self::COUNTS.with(|c| {
            let (seen, matched) = c.get();
            seen < 64 || matched * 2 < seen
        })
    }

    fn record(matched: bool) {
        Self::COUNTS.with(|c| {
            let (mut seen, mut hits) = c.get();
            seen += 1;
            hits += u32::from(matched);
            // Recent lines weigh most: halve the counts now and then.
            if seen >= 4096 {
                seen /= 2;
                hits /= 2;
            }
            c.set((seen, hits));
        })
    }
}

fn evaluate_one(
    cx: &Ctx<'_>,
    doc: Json,
    cands: &[usize],
    origin: &EventOrigin,
    out: &mut BlockResult,
) -> bool {
    out.events += 1;
    let hits = cx.set.evaluate_counting(&doc, cands);
    if hits.is_empty() {
        return false;
    }
    let mut shared: Option<Arc<Json>> = None;
    for (rule, mask) in hits {
        if cx.streaming[rule] {
            match cx.format {
                OutputFormat::Ndjson | OutputFormat::Json => {
                    // All of a block's alerts go into one buffer: one allocation per block.
                    cx.templates[rule].write_event_alert(&doc, origin, &mut out.json_lines);
                    out.json_lines.push(b'\n');
                    out.json_rules.push(rule);
                }
                _ => {
                    let alert = event_alert(&cx.set.rules[rule].meta, &doc, origin);
                    out.alerts.push((rule, render(cx.format, &alert)));
                }
            }
        } else {
            let d = shared.get_or_insert_with(|| Arc::new(doc.clone())).clone();
            out.matches.push((origin.offset, rule, mask, d));
        }
    }
    true
}

/// The predicates a line may match, as the block screen left them.
#[derive(Clone, Copy)]
enum LineCands<'a> {
    /// Exactly these.
    Known(&'a [usize]),
    /// These at most: the line's projected values decide which (see
    /// `Prefilter::candidates_in_values`).
    FromValues(&'a [usize]),
}

fn scan_line(
    cx: &Ctx<'_>,
    block: &Block,
    start: usize,
    raw: &[u8],
    line_no: &mut dyn FnMut() -> u64,
    cands: LineCands<'_>,
    out: &mut BlockResult,
) {
    let (cands, decide_on_values) = match cands {
        LineCands::Known(c) => (c, false),
        LineCands::FromValues(c) => (c, true),
    };
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        skip(
            &mut out.skipped,
            &block.file,
            line_no(),
            "blank line".into(),
        );
        return;
    }
    if cands.is_empty() {
        // No rule can match this line: check its shape without parsing it.
        if raw[0] == b'{' && raw[raw.len() - 1] == b'}' {
            out.filtered += 1;
        } else {
            skip(
                &mut out.skipped,
                &block.file,
                line_no(),
                "not a JSON object".into(),
            );
        }
        return;
    }
    let mut decided: Vec<usize> = Vec::new();
    let mut cands = cands;
    if let Some(projection) = cx
        .projection
        .as_ref()
        .filter(|_| decide_on_values || MatchRate::projection_pays())
    {
        // Most candidates usually match nothing: decide on the fields rules read first.
        if let Some(doc) = parse_projected(raw, projection) {
            let wrapped = doc.get("_source").is_some() || doc.get("hits").is_some();
            if !wrapped {
                if decide_on_values {
                    // `cands` holds every predicate with literals (and those without): keep
                    // those without, and those whose literals the values hold.
                    let mut with_literals = Vec::new();
                    cx.set
                        .prefilter()
                        .candidates_in_values(&doc, &mut with_literals);
                    decided.extend_from_slice(cx.set.always());
                    decided.extend(with_literals);
                    cands = &decided;
                }
                if !cx.set.screen(&doc, cands) {
                    MatchRate::record(false);
                    out.parsed += 1;
                    out.events += 1;
                    return;
                }
            }
        }
    }
    match serde_json::from_slice::<Json>(raw) {
        Ok(doc @ Json::Object(_)) => {
            out.parsed += 1;
            let origin = EventOrigin {
                file: block.file.to_string(),
                offset: block.offset + start as u64,
            };
            let matched = evaluate_doc(cx, doc, cands, origin, out);
            MatchRate::record(matched);
        }
        Ok(_) => skip(
            &mut out.skipped,
            &block.file,
            line_no(),
            "not a JSON object".into(),
        ),
        Err(e) => skip(
            &mut out.skipped,
            &block.file,
            line_no(),
            format!("malformed JSON at column {}: {e}", e.column()),
        ),
    }
}

fn scan_block(cx: &Ctx<'_>, block: &mut Block) -> BlockResult {
    // Converted events whose formatting was left to the scanning thread.
    block.format_deferred();
    let converted = block.converted.take();
    let mut out = scan_ndjson_block(cx, block);
    if let Some(c) = converted {
        // The block's lines are ECS events made from `c.lines` source lines: account for those.
        // Events the converter's screen held back were ruled out by the rules, unwritten.
        out.converted_events = out.lines + c.screened;
        out.filtered += c.screened;
        out.converted_records = c.lines - c.skipped.len() as u64;
        out.lines = c.lines;
        out.skipped.extend(c.skipped);
        out.warnings = c.warnings;
    }
    out
}

fn scan_ndjson_block(cx: &Ctx<'_>, block: &mut Block) -> BlockResult {
    let set = cx.set;
    let mut out = BlockResult::new(0);
    for (i, len) in block.oversized.iter().enumerate() {
        skip(
            &mut out.skipped,
            &block.file,
            i as u64,
            format!(
                "line of {len} bytes is longer than the {} MiB limit",
                unithunt_readers::MAX_LINE >> 20
            ),
        );
    }
    let base = block.oversized.len() as u64;
    let data: &[u8] = &block.data;
    let prefilter = set.prefilter();
    // With a big literal set, flagged lines get their predicates from their projected values
    // (see `Prefilter::decides_on_values`); until then they may match any predicate with literals.
    let on_values = cx.projection.is_some() && prefilter.decides_on_values();
    let (screen, undecided) = if on_values {
        (prefilter.flag_block(data), prefilter.with_literals())
    } else {
        (prefilter.screen_block(data), Vec::new())
    };
    let always = set.always();
    let decide = on_values.then_some(&undecided[..]);
    let mut cands: Vec<usize> = Vec::new();
    if always.is_empty() && screen.framed {
        // Fast path: every line has an object's shape and only the screened lines can match, so
        // only they are visited; line numbers (for messages) are counted on demand, forwards.
        let own_lines = screen.newlines + usize::from(data.last() != Some(&b'\n'));
        out.lines = base + own_lines as u64;
        out.filtered = (own_lines - screen.lines.len()) as u64;
        let mut counted = (0usize, 0u64);
        for (start, preds) in &screen.lines {
            let start = *start;
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
            let mut line_no = || {
                counted.1 += memchr::memchr_iter(b'\n', &data[counted.0..start]).count() as u64;
                counted.0 = start;
                base + counted.1
            };
            scan_line(
                cx,
                block,
                start,
                &data[start..end],
                &mut line_no,
                match decide {
                    Some(all) => LineCands::FromValues(all),
                    None => LineCands::Known(preds),
                },
                &mut out,
            );
        }
        return out;
    }
    block.index_lines();
    out.lines = block.line_count();
    let mut next = screen.lines.iter().peekable();
    for i in 0..block.line_starts.len() {
        let start = block.line_starts[i];
        cands.clear();
        cands.extend_from_slice(always);
        let flagged = next.next_if(|(l, _)| *l == start);
        if let Some((_, preds)) = flagged {
            cands.extend_from_slice(decide.unwrap_or(preds));
        }
        let line_no = base + i as u64;
        scan_line(
            cx,
            block,
            start,
            block.line(i),
            &mut || line_no,
            if flagged.is_some() && decide.is_some() {
                LineCands::FromValues(&cands)
            } else {
                LineCands::Known(&cands)
            },
            &mut out,
        );
    }
    out
}

fn looks_like_document(b: &Block) -> bool {
    let Some(first) = (0..b.line_starts.len())
        .map(|i| b.line(i).trim_ascii())
        .find(|l| !l.is_empty())
    else {
        return false;
    };
    match first[0] {
        b'[' => true,
        b'{' => {
            serde_json::from_slice::<serde::de::IgnoredAny>(first).is_err()
                && first[first.len() - 1] != b'}'
        }
        _ => false,
    }
}

fn scan_document(cx: &Ctx<'_>, bytes: &[u8], file: &str, lines: u64) -> BlockResult {
    let mut out = BlockResult::new(lines);
    match serde_json::from_slice::<Json>(bytes) {
        Ok(doc) => {
            // Every line of a document is parsed as part of it.
            out.parsed = lines;
            let mut events = Vec::new();
            collect_document(doc, &mut events);
            if events.is_empty() {
                out.parsed = lines.saturating_sub(1);
                skip(
                    &mut out.skipped,
                    file,
                    0,
                    "JSON document holds no events".into(),
                );
            }
            let all = cx.set.all_stages();
            for (n, e) in events.into_iter().enumerate() {
                // Events of one document are told apart by their position in it.
                let origin = EventOrigin {
                    file: format!("{file}#{n}"),
                    offset: 0,
                };
                evaluate_one(cx, e, all, &origin, &mut out);
            }
        }
        Err(e) => {
            // The whole document is lost: all its lines are skipped, reported once.
            out.skipped_lines = lines;
            skip(
                &mut out.skipped,
                file,
                (e.line() as u64).saturating_sub(1),
                format!("malformed JSON document at column {}: {e}", e.column()),
            );
        }
    }
    out
}

/// What scanning a file needs besides the rules and the merge.
struct FileIo<'a> {
    /// Blocks read but not merged, at most.
    in_flight_cap: usize,
    /// Told how far into the file (its raw bytes) reading has come.
    progress: &'a dyn Fn(u64),
    io_errors: &'a mut Vec<String>,
}

/// Scans one input into the merge: one JSON document parsed whole, or blocks through the
/// format's converter to the workers and back in order. Read errors go to `io.io_errors`.
fn scan_file(
    mut input: Input,
    converters: &mut Converters,
    cx: &Ctx<'_>,
    m: &mut Merged<'_>,
    ts_field: &FieldPath,
    io: FileIo<'_>,
) {
    let FileIo {
        in_flight_cap,
        progress,
        io_errors,
    } = io;
    m.counts.stats.files += 1;
    let name = input.name().clone();
    // Lines of this file merged so far: block-relative line numbers start from here.
    let mut file_lines = 0u64;
    let read_error = std::sync::Mutex::new(None::<String>);
    let note_error = |input: &Input, e: std::io::Error| {
        let msg = format!(
            "{}: read error at byte {} of the file ({} bytes decoded): {e}",
            escape(&name),
            input.reader().raw_offset(),
            input.reader().bytes
        );
        if let Ok(mut slot) = read_error.lock() {
            slot.get_or_insert(msg);
        }
    };
    let format = input.format;
    if format != Format::Ecs {
        m.formats.push((name.to_string(), format, input.sniffed));
    }
    // The file's converter, shared with the thread that reads (put back after the file).
    let shared = converters.take(format).map(std::sync::Mutex::new);
    let transcoder = shared.as_ref();
    let document = format == Format::Ecs
        && input.first_block().is_some_and(|b| {
            b.index_lines();
            looks_like_document(b)
        });
    if document {
        // A JSON array or a pretty-printed response: one document, parsed whole.
        let mut all: Vec<u8> = Vec::new();
        loop {
            match input.next_raw(BLOCK) {
                Ok(Some(b)) => all.extend_from_slice(&b.data),
                Ok(None) => break,
                Err(e) => {
                    note_error(&input, e);
                    break;
                }
            }
        }
        let lines =
            memchr::memchr_iter(b'\n', &all).count() as u64 + u64::from(!all.ends_with(b"\n"));
        let result = scan_document(cx, &all, &name, lines);
        m.merge(result, &name, ts_field, &mut file_lines);
    } else {
        // A pipeline without barriers: workers take the next block as soon as they are free
        // (reading it under rayon's bridge lock, so decompression overlaps scanning) and this
        // thread merges results in input order. At most `in_flight_cap` blocks are read but
        // not yet merged, which bounds memory however slow one block is.
        let gate = Gate::new(in_flight_cap);
        let raw_offset = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, BlockResult)>(in_flight_cap);
            let (raw_offset_ref, input_ref) = (&raw_offset, &mut input);
            let note_error = &note_error;
            let gate_ref = &gate;
            let producer = scope.spawn(move || {
                let mut finished = false;
                // Converted formats go through their (sequential) converter as they are read;
                // at the end, what it still holds (events open at the end of the file).
                let blocks = std::iter::from_fn(move || {
                    if finished || !gate_ref.acquire() {
                        finished = true;
                        return None;
                    }
                    loop {
                        let mut converter =
                            transcoder.map(|t| t.lock().unwrap_or_else(|e| e.into_inner()));
                        let next = input_ref.next_ecs(converter.as_deref_mut(), BLOCK);
                        drop(converter);
                        raw_offset_ref.store(
                            input_ref.reader().raw_offset(),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        match next {
                            Ok(Some(b)) => return Some(b),
                            Ok(None) => {
                                finished = true;
                                return None;
                            }
                            // The next call gives the converter's last block.
                            Err(e) => note_error(input_ref, e),
                        }
                    }
                });
                blocks
                    .enumerate()
                    .par_bridge()
                    .for_each_with(tx, |tx, (i, mut block)| {
                        let result = scan_block(cx, &mut block);
                        drop(block);
                        let _ = tx.send((i, result));
                    });
            });
            let _close = CloseOnDrop(&gate);
            let mut waiting: std::collections::BTreeMap<usize, BlockResult> = Default::default();
            let mut next = 0;
            for (i, result) in rx {
                waiting.insert(i, result);
                while let Some(result) = waiting.remove(&next) {
                    m.merge(result, &name, ts_field, &mut file_lines);
                    next += 1;
                    gate.release();
                }
                progress(raw_offset.load(std::sync::atomic::Ordering::Relaxed));
            }
            if producer.join().is_err() {
                io_errors.push(format!("{}: a scanning thread failed", escape(&name)));
            }
        });
    }
    if let Some(e) = read_error.into_inner().ok().flatten() {
        io_errors.push(e);
    }
    m.counts.stats.bytes += input.reader().bytes;
    if let Some(t) = shared {
        converters.put(format, t.into_inner().unwrap_or_else(|e| e.into_inner()));
    }
}

/// What the ordered merge of block results accumulates.
struct Merged<'q> {
    detector: BatchDetector<'q>,
    counts: Counts,
    /// Files read in a format other than ECS: (file, format, sniffed?).
    formats: Vec<(String, Format, bool)>,
    sink: Printer,
    alerts_by_rule: HashMap<usize, u64>,
}

impl Merged<'_> {
    /// Folds one block's result in, in input order. `file_lines` counts the lines of the current
    /// file merged so far (block results number their lines from 0).
    fn merge(
        &mut self,
        r: BlockResult,
        file: &Arc<str>,
        ts_field: &FieldPath,
        file_lines: &mut u64,
    ) {
        let Merged {
            detector,
            counts,
            formats: _,
            sink,
            alerts_by_rule,
        } = self;
        let base = *file_lines + 1;
        *file_lines += r.lines;
        counts.stats.lines += r.lines;
        counts.stats.events += r.events;
        counts.stats.filtered += r.filtered;
        counts.parsed += r.parsed;
        counts.converted_records += r.converted_records;
        counts.converted_events += r.converted_events;
        counts.stats.skipped +=
            r.skipped.len() as u64 + r.skipped_lines.saturating_sub(r.skipped.len() as u64);
        for mut s in r.skipped {
            if counts.stats.reported.len() < unithunt_readers::MAX_REPORTED {
                s.line += base;
                counts.stats.reported.push(s);
            }
        }
        counts.warned += r.warnings.len() as u64;
        for mut w in r.warnings {
            if counts.warnings.len() < unithunt_readers::MAX_REPORTED {
                w.line += base;
                counts.warnings.push(w);
            }
        }
        for (rule, rendered) in r.alerts {
            *alerts_by_rule.entry(rule).or_default() += 1;
            sink.emit(rendered);
        }
        for &rule in &r.json_rules {
            *alerts_by_rule.entry(rule).or_default() += 1;
        }
        sink.emit_ndjson_block(&r.json_lines, r.json_rules.len() as u64);
        give_buffer(r.json_lines);
        for (offset, rule, mask, doc) in r.matches {
            let origin = EventOrigin {
                file: file.to_string(),
                offset,
            };
            let ts =
                lookup_one(&doc, ts_field).and_then(|t| parse_timestamp(t, TimestampFormat::Auto));
            detector.on_match(rule, mask, doc, ts, origin, &mut |rule, alerts| {
                if let Some(r) = rule {
                    *alerts_by_rule.entry(r).or_default() += 1;
                }
                for a in &alerts {
                    let _ = sink.alert(a); // (a printer never fails)
                }
            });
        }
    }
}

/// How a batch scan runs.
pub struct ScanOptions {
    /// How alerts are printed (workers render them in this format).
    pub output: OutputFormat,
    /// Pending sequences, sample keys and correlation groups per rule at most.
    pub max_pending: usize,
    /// The field holding the event time.
    pub timestamp_field: FieldPath,
    /// Audit logs are this host's own (parents looked up in /proc; see `ConvertOptions`).
    pub this_host: bool,
}

/// A scan of inputs, one after another, by the whole rule set.
pub struct BatchScan<'q> {
    cx: Ctx<'q>,
    merged: Merged<'q>,
    converters: Converters,
    timestamp_field: FieldPath,
    /// Blocks read but not merged, at most.
    in_flight_cap: usize,
    io_errors: Vec<String>,
}

/// What a scan did, for its summary.
pub struct ScanReport {
    /// Per-line accounting over every input.
    pub counts: Counts,
    /// Inputs read in a format other than ECS: (name, format, sniffed?).
    pub formats: Vec<(String, Format, bool)>,
    /// Alerts per rule (index into the set's rules).
    pub alerts_by_rule: HashMap<usize, u64>,
    /// Alerts printed.
    pub total_alerts: u64,
    /// Building blocks of sequences among the alerts (counted in `total_alerts` by every
    /// format but the table).
    pub building_blocks: u64,
    /// Per correlation rule: (alerts, groups evicted at the cap).
    pub correlations: Vec<(u64, u64)>,
    /// Sequence rules that evicted pending sequences at the cap: (rule, how many).
    pub evicted: Vec<(usize, u64)>,
    /// Events matching sequence stages that came after later events were sequenced.
    pub late: u64,
    /// Inputs that could not be read (or not to their end), each a message.
    pub io_errors: Vec<String>,
}

impl<'q> BatchScan<'q> {
    /// A scan by `set` printing to stdout in `options.output`; the warnings are correlations that
    /// do not resolve.
    pub fn new(set: &'q Arc<RuleSet>, options: ScanOptions) -> (BatchScan<'q>, Vec<String>) {
        let (detector, warnings) = BatchDetector::new(set, options.max_pending);
        // Rules a correlation names send their matches to the merge, where correlations run.
        let streaming: Vec<bool> = (0..set.rules.len()).map(|i| !detector.takes(i)).collect();
        let templates: Vec<AlertTemplate> = set
            .rules
            .iter()
            .map(|r| AlertTemplate::new(&r.meta))
            .collect();
        let cx = Ctx {
            set,
            format: options.output,
            streaming,
            templates,
            projection: set.projection(),
        };
        // One converter per format for all files: rotated logs continue one another (process
        // table). Audit records are kept in the events only when a rule reads them.
        let converters = Converters::new(ConvertOptions {
            raw_records: set.reads_raw_records(),
            screen: event_screen(set),
            // With several threads, events are formatted where their block is scanned (only
            // grouping and the process table stay sequential); with one, deferring would only
            // read records twice.
            defer_format: rayon::current_num_threads() > 1,
            this_host: options.this_host,
        });
        let merged = Merged {
            detector,
            counts: Counts::default(),
            formats: Vec::new(),
            sink: Printer::new(options.output),
            alerts_by_rule: HashMap::new(),
        };
        let scan = BatchScan {
            cx,
            merged,
            converters,
            timestamp_field: options.timestamp_field,
            in_flight_cap: rayon::current_num_threads().max(1) * 3,
            io_errors: Vec::new(),
        };
        (scan, warnings)
    }

    /// Scans one input; `progress` is told how far into it reading has come.
    pub fn scan(&mut self, input: Input, progress: &dyn Fn(u64)) {
        let io = FileIo {
            in_flight_cap: self.in_flight_cap,
            progress,
            io_errors: &mut self.io_errors,
        };
        scan_file(
            input,
            &mut self.converters,
            &self.cx,
            &mut self.merged,
            &self.timestamp_field,
            io,
        );
    }

    /// An input that could not be opened (it counts as an error of the scan).
    pub fn io_error(&mut self, message: String) {
        self.io_errors.push(message);
    }

    /// Feeds what sequence and sample rules still buffer, closes their windows and ends the
    /// output.
    pub fn finish(self) -> ScanReport {
        let Merged {
            detector,
            mut sink,
            mut alerts_by_rule,
            mut counts,
            formats,
        } = self.merged;
        let report = detector.finish(&mut |rule, alerts| {
            if let Some(r) = rule {
                *alerts_by_rule.entry(r).or_default() += 1;
            }
            for a in &alerts {
                let _ = sink.alert(a); // (a printer never fails: see `finish`)
            }
        });
        counts.no_time = report.no_time;
        // (A printer never fails: stdout going away only stops the writing.)
        let total_alerts = sink.finish().unwrap_or_default();
        let building_blocks = sink.building_blocks();
        ScanReport {
            building_blocks,
            counts,
            formats,
            alerts_by_rule,
            total_alerts,
            correlations: report.correlations,
            evicted: report.evicted,
            late: report.late,
            io_errors: self.io_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use unithunt_rules::RulePack;

    /// The projected parse must decide exactly as the whole parse does: for the built-in pack and
    /// Elastic's Linux rules, over the fixtures and generated Elastic Defend events (all relevant).
    #[test]
    fn projected_documents_match_exactly_what_whole_ones_match() {
        let mut lines: Vec<String> = Vec::new();
        for f in [
            "../../examples/atomic/ecs/adversary-tests.ndjson",
            "../../examples/atomic/ecs/benign-twins.ndjson",
            "../../examples/atomic-tests.ecs.ndjson",
        ] {
            let text = std::fs::read_to_string(f).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
        let mut gen = unithunt_corpus::Generator::new(&unithunt_corpus::Config {
            relevant_rate: 1.0,
            ..Default::default()
        });
        lines.extend((0..1000).map(|_| gen.next_event().0.to_string()));
        let mut gen = unithunt_corpus::Generator::new(&unithunt_corpus::Config::default());
        lines.extend((0..1000).map(|_| gen.next_event().0.to_string()));
        let mut packs = vec![RulePack::builtin()];
        let elastic = Path::new("../../../shared/peer/elastic-detection-rules/rules/linux");
        // Peer data is required (tests/common: a missing ../shared fails loudly).
        assert!(
            elastic.is_dir(),
            "{} is missing: clone unithunt beside ../shared",
            elastic.display()
        );
        let mut pack = RulePack::default();
        let _ = pack.add_path(elastic);
        packs.push(pack);
        let mut compared = 0;
        let expected = lines.len() * packs.len();
        for pack in packs {
            let set = RuleSet::new(pack);
            let Some(projection) = set.projection() else {
                continue;
            };
            let all: Vec<usize> = (0..set.stages().len()).collect();
            for line in &lines {
                let whole: Json = serde_json::from_str(line).unwrap();
                let projected = parse_projected(line.as_bytes(), &projection).unwrap();
                assert_eq!(
                    set.evaluate(&projected, &all),
                    set.evaluate(&whole, &all),
                    "{line}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, expected, "every pack has a projection");
    }
}
