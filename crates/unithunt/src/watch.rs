//! `unithunt watch`: live detection. Follows an audit log as auditd writes it (or reads records on
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

use crate::input_args::InputFormat;
use crate::term::escape;
use clap::Args;
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use unithunt_detect::LiveDetector;
use unithunt_event::{neutral, parse_timestamp, TimestampFormat};
use unithunt_output::{AlertSink, LineFormat, LinePrinter};
use unithunt_readers::format::sniff_decided;
use unithunt_readers::{Block, ConvertOptions, Converter, Format};
use unithunt_rules::alert::EventOrigin;
use unithunt_rules::RuleSet;

/// At restart, at most this many bytes of the log are replayed to rebuild state.
const REPLAY_LIMIT: u64 = 256 << 20;
/// Open audit events are closed after this long without input (auditd writes an event's records
/// together; a pause this long means the event is complete).
const IDLE_FLUSH: Duration = Duration::from_millis(250);
/// Log files remembered in the checkpoint's chain.
const CHAIN_MAX: usize = 16;
/// At most this much of the log is read at a time (then signals are looked at, and the rest is
/// read without sleeping).
const READ_CHUNK: u64 = 8 << 20;
/// A line longer than this is dropped (counted as skipped, with a warning): auditd's records are
/// under 9 kB, and a file of zeros must not fill memory while no newline comes.
const MAX_LINE: usize = 16 << 20;
/// A checkpoint (or a sink's position file) larger than this is not one.
const STATE_MAX: u64 = 1 << 20;

/// What a file that is not a regular file is, for messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading with `O_NONBLOCK` (open(2) of a FIFO would otherwise wait for a
/// writer) and checks with fstat that it is a regular file: a device or a FIFO never ends, or
/// never answers. `Ok(None)` when it does not exist; the error is a message naming the path.
pub(crate) fn open_regular(
    path: &Path,
) -> Result<Option<(std::fs::File, std::fs::Metadata)>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = || escape(&path.to_string_lossy());
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", shown())),
    };
    let meta = file.metadata().map_err(|e| format!("{}: {e}", shown()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is {}, not a regular file: refused",
            shown(),
            kind_of(&meta)
        ));
    }
    Ok(Some((file, meta)))
}

/// The whole of a small state file (checkpoint, a sink's position): regular, at most
/// [`STATE_MAX`] bytes. `Ok(None)` when it does not exist.
pub(crate) fn read_state(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let Some((file, _)) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(STATE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", escape(&path.to_string_lossy())))?;
    if bytes.len() as u64 > STATE_MAX {
        return Err(format!(
            "{} is larger than {STATE_MAX} bytes: not a state file of unithunt watch",
            escape(&path.to_string_lossy())
        ));
    }
    Ok(Some(bytes))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchOutput {
    /// One line per alert for people (escaped).
    Table,
    /// One alert document per line.
    Ndjson,
    /// Nothing on stdout (the journal and the other sinks still get every alert).
    None,
}

#[derive(Args)]
pub struct WatchArgs {
    /// The log to follow, across rotation; `-` reads standard input (as an auditd dispatcher
    /// plugin: see packaging/audit-plugin-unithunt.conf).
    #[arg(default_value = "/var/log/audit/audit.log")]
    path: PathBuf,
    /// The input's format.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// Rules and tuning, as for `scan`; reloaded on SIGHUP.
    #[command(flatten)]
    rule_args: crate::rule_args::RuleArgs,
    /// What to print on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = WatchOutput::Table)]
    output: WatchOutput,
    /// The checkpoint file (position and log chain); the alert journal and the HTTP sink's
    /// position live beside it unless given.
    #[arg(long, default_value = "/var/lib/unithunt/watch.checkpoint")]
    checkpoint: PathBuf,
    /// The alert journal: every alert, NDJSON (default: `alerts.ndjson` beside the checkpoint).
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Rotate the journal past this many bytes (one previous file is kept: FILE.1).
    #[arg(long, default_value_t = 64 << 20)]
    alerts_max_bytes: u64,
    /// Send each alert to syslog (RFC 5424): `udp://HOST:PORT`, `tcp://HOST:PORT` or
    /// `unix:/dev/log`.
    #[arg(long, value_name = "ADDRESS")]
    syslog: Option<String>,
    /// Ship alerts to an Elasticsearch-compatible `_bulk` endpoint, e.g.
    /// `http://localhost:9200/_bulk`, with retries, back-off and the journal as spool.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// The index the `_bulk` actions name.
    #[arg(long, default_value = "unithunt-alerts")]
    http_index: String,
    /// A header for the HTTP sink (repeatable), e.g. `Authorization: ApiKey ...`.
    #[arg(long, value_name = "NAME: VALUE")]
    http_header: Vec<String>,
    /// Without a checkpoint, read the log from its start (default: from its end, like tail -F).
    #[arg(long)]
    from_start: bool,
    /// Save the checkpoint after this many events (and every 5 s, and on shutdown).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Print a statistics line every N seconds (0: only on SIGUSR1).
    #[arg(long, default_value_t = 0)]
    stats_interval: u64,
    /// Polling period of the followed file, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Stop when the input is exhausted (stdin closed; for a file: at its end, after replay).
    #[arg(long)]
    exit_at_eof: bool,
    /// Look up parents that started before the log in /proc (default: when following this
    /// host's own audit log or stdin).
    #[arg(long)]
    this_host: Option<bool>,
}

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static STATS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}
extern "C" fn on_hup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}
extern "C" fn on_usr1(_: libc::c_int) {
    STATS.store(true, Ordering::SeqCst);
}

fn install_signals() {
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGHUP,
            on_hup as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGUSR1,
            on_usr1 as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsynced, renamed over it, and
/// the directory fsynced (so that the rename itself survives a crash).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A log file, known by what rotation does not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The checkpoint: the chain of files read, oldest first, and where reading began in the first.
#[derive(Clone, Debug, Default)]
struct Checkpoint {
    chain: Vec<FileId>,
    first_from: u64,
    /// The position reached in the last file of the chain.
    offset: u64,
    last_event_id: String,
    saved_ms: i64,
}

impl Checkpoint {
    fn to_json(&self) -> Json {
        json!({
            "unithunt_watch_checkpoint": 1,
            "chain": self.chain.iter().map(|f| json!({"dev": f.dev, "ino": f.ino})).collect::<Vec<_>>(),
            "first_from": self.first_from,
            "offset": self.offset,
            "last_event_id": self.last_event_id,
            "saved_ms": self.saved_ms,
        })
    }

    fn from_json(j: &Json) -> Option<Checkpoint> {
        if j["unithunt_watch_checkpoint"] != 1 {
            return None;
        }
        Some(Checkpoint {
            chain: j["chain"]
                .as_array()?
                .iter()
                .map(|f| {
                    Some(FileId {
                        dev: f["dev"].as_u64()?,
                        ino: f["ino"].as_u64()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            first_from: j["first_from"].as_u64()?,
            offset: j["offset"].as_u64()?,
            last_event_id: j["last_event_id"].as_str().unwrap_or("").to_string(),
            saved_ms: j["saved_ms"].as_i64().unwrap_or(0),
        })
    }

    /// Opened with `O_NONBLOCK`, checked regular and read at most [`STATE_MAX`] bytes: a FIFO or
    /// a link to a device there is refused, not waited on or read forever.
    fn load(path: &Path) -> Result<Option<Checkpoint>, String> {
        match read_state(path).map_err(|e| format!("checkpoint {e}"))? {
            Some(bytes) => serde_json::from_slice::<Json>(&bytes)
                .ok()
                .and_then(|j| Checkpoint::from_json(&j))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{}: not a unithunt watch checkpoint",
                        escape(&path.to_string_lossy())
                    )
                }),
            None => Ok(None),
        }
    }
}

/// A file to replay: its name when listed, identity, where to start, and the file itself
/// (opened when listed, so that a rotation during the replay cannot swap it), and whether it is
/// the log itself (then following goes on from its end).
struct Replay {
    path: PathBuf,
    id: FileId,
    from: u64,
    file: std::fs::File,
    is_log: bool,
}

/// The files to replay at restart: the checkpoint's chain still on disk (found by inode among
/// the log and its rotated siblings), then what was rotated since, then the log itself. Each with
/// the offset to start at. Bounded by [`REPLAY_LIMIT`].
fn replay_plan(log: &Path, cp: &Checkpoint) -> Vec<Replay> {
    let dir = log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = log.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut present: Vec<(PathBuf, FileId, std::fs::Metadata, std::fs::File)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == base || name.strip_prefix(base).is_some_and(|r| r.starts_with('.')) {
                // Never a FIFO or a device (open_regular neither blocks nor accepts them).
                if let Ok(Some((file, m))) = open_regular(&e.path()) {
                    present.push((e.path(), FileId::of(&m), m, file));
                }
            }
        }
    }
    let is_log = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()) == Some(base);
    let mut order: Vec<(usize, u64)> = Vec::new();
    for (i, id) in cp.chain.iter().enumerate() {
        if let Some(k) = present.iter().position(|(_, f, _, _)| f == id) {
            order.push((k, if i == 0 { cp.first_from } else { 0 }));
        }
    }
    // Rotated since the checkpoint (not in the chain, changed after it), oldest first; the log
    // itself last.
    let mut newer: Vec<usize> = (0..present.len())
        .filter(|&k| {
            let (p, f, m, _) = &present[k];
            !cp.chain.contains(f)
                && !is_log(p)
                && m.mtime() * 1000 + m.mtime_nsec() / 1_000_000 >= cp.saved_ms
        })
        .collect();
    newer.sort_by_key(|&k| (present[k].2.mtime(), present[k].2.mtime_nsec()));
    order.extend(newer.into_iter().map(|k| (k, 0)));
    if let Some(k) = present.iter().position(|(p, _, _, _)| is_log(p)) {
        if !order.iter().any(|(o, _)| *o == k) {
            order.push((k, 0));
        }
    }
    // Bounded: drop the oldest files while the rest exceed the limit.
    while order.len() > 1
        && order
            .iter()
            .map(|(k, from)| present[*k].2.len().saturating_sub(*from))
            .sum::<u64>()
            > REPLAY_LIMIT
    {
        order.remove(0);
    }
    let mut slots: Vec<Option<(PathBuf, FileId, std::fs::Metadata, std::fs::File)>> =
        present.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(k, from)| {
            let (path, id, _, file) = slots[k].take()?;
            let log = is_log(&path);
            Some(Replay {
                path,
                id,
                from,
                file,
                is_log: log,
            })
        })
        .collect()
}

/// The alert journal: every alert raised, NDJSON, and the ids in it (to raise none twice).
struct Journal {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max: u64,
    /// Ids in the journal file and in its rotated predecessor (what rotates out is forgotten,
    /// so memory stays bounded by the journal's size).
    ids: HashSet<String>,
    previous_ids: HashSet<String>,
    /// A regular file (read back, rotated, shipped); otherwise a character device such as
    /// `/dev/null`, only written to.
    regular: bool,
}

impl Journal {
    /// Opened with `O_NONBLOCK` and looked at with fstat before anything is read: a regular file
    /// is read back (ids, torn line); a character device (`/dev/null`, `/dev/full`) is only
    /// written to, nothing is read from it; a FIFO, socket or directory is refused.
    fn open(path: &Path, max: u64) -> Result<Journal, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let shown = |e: std::io::Error| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(shown)?;
        let meta = file.metadata().map_err(shown)?;
        // Writes block again, as for any file.
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        if !meta.is_file() {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_char_device() {
                return Err(format!(
                    "{} is {}: the journal must be a regular file (or a character device such as /dev/null)",
                    path.display(),
                    kind_of(&meta)
                ));
            }
            return Ok(Journal {
                path: path.to_path_buf(),
                file,
                size: 0,
                max,
                ids: HashSet::new(),
                previous_ids: HashSet::new(),
                regular: false,
            });
        }
        let mut previous_ids = HashSet::new();
        if let Ok(Some((mut f, _))) = open_regular(&rotated_path(path)) {
            let mut bytes = Vec::new();
            if f.read_to_end(&mut bytes).is_ok() {
                collect_ids(&bytes, &mut previous_ids);
            }
        }
        let mut ids = HashSet::new();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(shown)?;
        // A torn last line (killed mid-write): cut it off; its alert is raised again.
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            file.set_len(whole as u64).map_err(shown)?;
        }
        collect_ids(&bytes[..whole], &mut ids);
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            size: whole as u64,
            max,
            ids,
            previous_ids,
            regular: true,
        })
    }

    fn contains(&self, uuid: &str) -> bool {
        self.ids.contains(uuid) || self.previous_ids.contains(uuid)
    }

    /// Appends an alert; false when its id was raised before.
    fn append(&mut self, uuid: &str, line: &[u8]) -> std::io::Result<bool> {
        if self.contains(uuid) {
            return Ok(false);
        }
        if self.regular && self.size + line.len() as u64 > self.max && self.size > 0 {
            self.file.sync_all()?;
            std::fs::rename(&self.path, rotated_path(&self.path))?;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.path)?;
            self.size = 0;
            self.previous_ids = std::mem::take(&mut self.ids);
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.ids.insert(uuid.to_string());
        self.size += buf.len() as u64;
        Ok(true)
    }

    fn sync(&self) {
        let _ = self.file.sync_data();
    }
}

/// Where a journal goes when it rotates (one previous file is kept).
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

fn collect_ids(bytes: &[u8], ids: &mut HashSet<String>) {
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(j) = serde_json::from_slice::<Json>(line) {
            if let Some(id) = j["kibana.alert.uuid"].as_str() {
                ids.insert(id.to_string());
            }
        }
    }
}

/// One RFC 5424 message: facility 13 (log audit), severity from the alert's, the rule and alert
/// id as structured data, and the fields an analyst reads first as compact JSON in the message
/// (the whole alert is in the journal): kept under 2 kB, the size every receiver accepts over UDP
/// (RFC 5426), long values cut.
pub fn syslog_message(alert: &Json, host: &str) -> String {
    let severity = match alert["kibana.alert.severity"].as_str().unwrap_or("") {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        _ => 5,
    };
    let pri = 13 * 8 + severity;
    let time = unithunt_event::format_iso_ms(now_ms());
    let name = alert["kibana.alert.rule.name"].as_str().unwrap_or("");
    // PARAM-VALUE escapes: `"`, `\` and `]`.
    let sd_escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let cut = |v: &Json| -> Json {
        match v.as_str() {
            Some(s) if s.chars().count() > 400 => {
                Json::String(s.chars().take(400).collect::<String>() + "…")
            }
            _ => v.clone(),
        }
    };
    let summary = json!({
        "@timestamp": alert["@timestamp"],
        "rule_id": alert["kibana.alert.rule.rule_id"],
        "severity": alert["kibana.alert.severity"],
        "risk_score": alert["kibana.alert.risk_score"],
        "reason": cut(&alert["kibana.alert.reason"]),
        "host": alert["host"]["name"],
        "user": alert["user"]["name"],
        "process": cut(&alert["process"]["command_line"]),
        "parent": cut(&alert["process"]["parent"]["command_line"]),
        "file": cut(&alert["file"]["path"]),
        "event_id": alert["event"]["id"],
    });
    format!(
        "<{pri}>1 {time} {host} unithunt {} alert [unithunt@32473 rule=\"{}\" id=\"{}\"] {}",
        std::process::id(),
        sd_escape(name),
        sd_escape(alert["kibana.alert.uuid"].as_str().unwrap_or("")),
        neutral::to_string(&summary).unwrap_or_default(),
    )
}

/// The detector of `set` (keeping the pending sequences of unchanged rules from `previous`),
/// saying which correlations do not resolve.
fn new_detector(set: &'static RuleSet, previous: Option<LiveDetector>) -> LiveDetector {
    let (detector, warnings) =
        LiveDetector::new(set, previous, unithunt_detect::DEFAULT_MAX_PENDING);
    for w in warnings {
        eprintln!("warning: {}", escape(&w));
    }
    detector
}

fn load_rules(args: &WatchArgs) -> Result<&'static RuleSet, String> {
    let pack = args.rule_args.load()?;
    // Kept for the life of the process: sequence runners borrow their rule's query, and a rule
    // unchanged by a reload keeps its runner (each reload keeps one more set alive, a few kB).
    Ok(Box::leak(Box::new(RuleSet::new(pack))))
}

/// This machine's name (for syslog's HOSTNAME), `-` when unknown (RFC 5424's nil value).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

/// Counters for the statistics line.
#[derive(Default)]
struct Stats {
    lines: u64,
    events: u64,
    alerts: u64,
    duplicates: u64,
    skipped: u64,
    newest_event_ms: i64,
}

/// Turns input bytes into ECS events.
/// Lines of the followed input to ECS NDJSON: in the format given, or (`auto`) the one sniffed
/// from the first line that says something.
struct Convert {
    format: Option<Format>,
    options: ConvertOptions,
    /// The format's converter (none for ECS), once the format is known.
    converter: Option<Converter>,
    /// The file being read, and its lines fed so far (converters number lines per block).
    file: String,
    lines: u64,
    /// The clock of open events' deadlines.
    started: Instant,
}

impl Convert {
    fn new(format: Option<Format>, this_host: bool) -> Convert {
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
        }
    }

    /// Whole lines in, ECS NDJSON out (events complete so far).
    fn feed(&mut self, lines: &[u8], file: &str, out: &mut Vec<u8>, skipped: &mut u64) {
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
                        "unithunt watch: {} read as {} (sniffed)",
                        escape(file),
                        f.name()
                    );
                    self.format = Some(f);
                    self.converter = f.converter(&self.options);
                    f
                }
                // Blank and comment lines only, so far: skipped in any format.
                None => {
                    *skipped += self.lines - base;
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
            *skipped += c.skipped.len() as u64;
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
    fn settle(&mut self, out: &mut Vec<u8>) {
        let now = self.started.elapsed().as_millis() as u64;
        if let Some(c) = self.converter.as_mut() {
            c.close_settled(now, IDLE_FLUSH.as_millis() as u64, out);
        }
    }

    /// Closes what is open (a pause in the input, the end of a file).
    fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some(c) = self.converter.as_mut() {
            c.flush_open(out);
        }
    }
}

/// Everything one watch holds.
struct Watch {
    /// Alerts on stdout as they are raised (none with `-o none`).
    printer: Option<LinePrinter<std::io::Stdout>>,
    engine: LiveDetector,
    convert: Convert,
    journal: Journal,
    stats: Stats,
    last_event_id: String,
    /// Raise no alert (replay of what was read before the checkpoint's start is not needed
    /// here: the journal decides).
    quiet_stdout: bool,
    /// An alert could not be written to the journal (disk full, I/O error): watch stops with
    /// status 1 and does not save the checkpoint past the event, so that the next start raises
    /// the alert again.
    failed: bool,
}

impl Watch {
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
        let mut skipped = 0;
        self.convert.feed(lines, file, &mut ecs, &mut skipped);
        self.stats.skipped += skipped;
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
        for line in ecs.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(doc) = serde_json::from_slice::<Json>(line) else {
                self.stats.skipped += 1;
                continue;
            };
            self.stats.events += 1;
            if let Some(id) = doc["event"]["id"].as_str() {
                self.last_event_id = id.to_string();
            }
            if let Some(t) = doc
                .get("@timestamp")
                .and_then(|t| parse_timestamp(t, TimestampFormat::Auto))
            {
                self.stats.newest_event_ms = self.stats.newest_event_ms.max(t / 1_000_000);
            }
            for alert in self.engine.event(doc, &origin) {
                self.raise(alert);
            }
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
        let line = neutral::to_vec(&alert).unwrap_or_default();
        if self.failed {
            return;
        }
        match self.journal.append(&uuid, &line) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                eprintln!(
                    "error: alert journal {}: {e}: watch stops (the checkpoint is not advanced, so the next start raises this alert again)",
                    escape(&self.journal.path.to_string_lossy())
                );
                self.failed = true;
                return;
            }
        }
        self.stats.alerts += 1;
        if !self.quiet_stdout {
            if let Some(p) = self.printer.as_mut() {
                // Stdout going away (`| head`) does not stop detection: the journal has it.
                let _ = p.alert(&alert);
            }
        }
    }

    fn stats_line(&self, started: Instant) -> String {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let lag = if self.stats.newest_event_ms > 0 {
            format!("{} ms", (now_ms() - self.stats.newest_event_ms).max(0))
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

/// Reads whole lines appended to a file, following it across rotation (rename) and truncation.
/// Only a regular file is read (checked with fstat after an `O_NONBLOCK` open), at most
/// [`READ_CHUNK`] bytes a call, and a line longer than [`MAX_LINE`] is dropped.
struct Follower {
    path: PathBuf,
    file: Option<std::fs::File>,
    id: Option<FileId>,
    offset: u64,
    partial: Vec<u8>,
    /// The last read filled a chunk: more is there, read it without sleeping.
    more: bool,
    /// Dropping the rest of a line longer than [`MAX_LINE`].
    dropping: bool,
    /// Lines dropped for their length.
    oversized: u64,
    /// Why the file the name now leads to was not opened (a rotation to a FIFO or a device).
    problem: Option<String>,
}

impl Follower {
    /// Opens `path` at `offset` (or its end when `None`); not there: nothing open yet. An error
    /// when it is there but not a regular file, or cannot be opened.
    fn open(path: &Path, offset: Option<u64>) -> Result<Follower, String> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            id: None,
            offset: 0,
            partial: Vec::new(),
            more: false,
            dropping: false,
            oversized: 0,
            problem: None,
        };
        if let Some((mut file, m)) = open_regular(path)? {
            f.id = Some(FileId::of(&m));
            f.offset = offset.unwrap_or(m.len()).min(m.len());
            let _ = file.seek(SeekFrom::Start(f.offset));
            f.file = Some(file);
        }
        Ok(f)
    }

    /// Follows the name to the file now there (after a rotation); one that cannot be read is
    /// left closed, with the reason in `problem`.
    fn reopen(&mut self) {
        let oversized = self.oversized;
        match Follower::open(&self.path.clone(), Some(0)) {
            Ok(f) => *self = f,
            Err(e) => {
                self.file = None;
                self.id = None;
                self.offset = 0;
                self.partial.clear();
                self.more = false;
                self.dropping = false;
                self.problem = Some(e);
            }
        }
        self.oversized = oversized;
    }

    /// What was appended since the last call, as whole lines; at a rotation, the rest of the old
    /// file first (`Rotated` then tells the caller to close open events), then the new file.
    fn poll(&mut self) -> Polled {
        // The name is looked at before reading: whatever was written to the old file before it
        // was renamed away is then read below, before switching to the new one.
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (FileId::of(&m), m.len()));
        let mine = match (current, self.id) {
            // Not open yet (the log did not exist): the caller opens it when it appears.
            (_, None) => return Polled::Lines(Vec::new(), 0),
            (Some((id, len)), Some(mine)) if id == mine && len < self.offset => {
                // Truncated in place: start again from its beginning.
                if let Some(file) = self.file.as_mut() {
                    let _ = file.seek(SeekFrom::Start(0));
                }
                self.offset = 0;
                self.partial.clear();
                self.dropping = false;
                mine
            }
            (_, Some(mine)) => mine,
        };
        let before = self.offset;
        let mut out = Vec::new();
        if let Some(file) = self.file.as_mut() {
            let _ = Read::by_ref(file).take(READ_CHUNK).read_to_end(&mut out);
        }
        self.more = out.len() as u64 == READ_CHUNK;
        self.offset += out.len() as u64;
        // The rest of an oversized line is dropped up to its newline.
        let mut skip = 0;
        if self.dropping {
            match out.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    skip = i + 1;
                    self.dropping = false;
                }
                None => skip = out.len(),
            }
        }
        let start = if self.partial.is_empty() {
            before + skip as u64
        } else {
            before - self.partial.len() as u64
        };
        self.partial.extend_from_slice(&out[skip..]);
        if !self.more && current.is_some_and(|(id, _)| id != mine) {
            // Rotated: the rest of the old file was just read; a torn last line there is
            // complete (nothing more is appended to a rotated log).
            let mut lines = std::mem::take(&mut self.partial);
            if !lines.is_empty() && lines.last() != Some(&b'\n') {
                lines.push(b'\n');
            }
            self.reopen();
            return Polled::Rotated(lines, start);
        }
        let whole = self
            .partial
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let rest = self.partial.split_off(whole);
        let lines = std::mem::replace(&mut self.partial, rest);
        if self.partial.len() > MAX_LINE {
            self.partial.clear();
            self.dropping = true;
            self.oversized += 1;
        }
        Polled::Lines(lines, start)
    }

    /// The offset of the first byte not yet given out as a whole line.
    fn position(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }
}

enum Polled {
    /// Whole lines, and the offset of their first byte.
    Lines(Vec<u8>, u64),
    /// The last lines of a file rotated away; the follower now reads the new file.
    Rotated(Vec<u8>, u64),
}

pub fn run(args: WatchArgs) -> ExitCode {
    let started = Instant::now();
    let set = match load_rules(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stdin = args.path.as_os_str() == "-";
    let this_host = args
        .this_host
        .unwrap_or(stdin || args.path == Path::new("/var/log/audit/audit.log"));
    let journal_path = args.alerts.clone().unwrap_or_else(|| {
        args.checkpoint
            .parent()
            .unwrap_or(Path::new("."))
            .join("alerts.ndjson")
    });
    let journal = match Journal::open(&journal_path, args.alerts_max_bytes) {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "error: alert journal {} (give --checkpoint PATH to keep unithunt's state elsewhere)",
                escape(&e)
            );
            return ExitCode::from(2);
        }
    };
    let syslog = match args
        .syslog
        .as_deref()
        .map(|a| crate::watch_syslog::Syslog::parse(a, hostname()))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", escape(&e));
            return ExitCode::from(2);
        }
    };
    if (syslog.is_some() || args.http.is_some()) && !journal.regular {
        eprintln!(
            "error: alert journal {} is not a regular file: --http and --syslog ship alerts from it",
            escape(&journal_path.to_string_lossy())
        );
        return ExitCode::from(2);
    }
    let checkpoint = if stdin {
        None
    } else {
        match Checkpoint::load(&args.checkpoint) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {}", escape(&e));
                return ExitCode::from(2);
            }
        }
    };
    install_signals();
    // Every remote sink ships from the journal through the same shipper; each keeps its own
    // position beside the checkpoint.
    let position = |suffix: &str| {
        let mut s = args.checkpoint.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut shippers = Vec::new();
    if let Some(url) = &args.http {
        shippers.push(crate::watch_sink::Shipper::start(
            format!("http sink {}", escape(url)),
            Box::new(crate::watch_http::Http::new(
                url.clone(),
                args.http_index.clone(),
                args.http_header.clone(),
            )),
            journal_path.clone(),
            position(".http"),
        ));
    }
    if let (Some(address), Some(s)) = (&args.syslog, syslog) {
        shippers.push(crate::watch_sink::Shipper::start(
            format!("syslog sink {}", escape(address)),
            Box::new(s),
            journal_path.clone(),
            position(".syslog"),
        ));
    }
    let mut w = Watch {
        printer: match args.output {
            WatchOutput::Table => Some(LineFormat::Table),
            WatchOutput::Ndjson => Some(LineFormat::Ndjson),
            WatchOutput::None => None,
        }
        .map(|f| LinePrinter::new(f, std::io::stdout())),
        engine: new_detector(set, None),
        convert: Convert::new(args.input_format.0, this_host),
        journal,
        stats: Stats::default(),
        last_event_id: String::new(),
        quiet_stdout: false,
        failed: false,
    };
    let status = if stdin {
        watch_stdin(&args, &mut w, started)
    } else {
        watch_file(&args, &mut w, checkpoint, started)
    };
    w.journal.sync();
    // The input ended (or the journal failed): the sinks get a bounded budget to deliver what
    // is left. Stopped by a signal: a sink that is delivering gets a moment, a failing one none.
    // A signal during the budget ends it at once.
    let signalled = STOP.load(Ordering::SeqCst);
    let budget = if signalled {
        crate::watch_sink::Budget {
            attempts: 0,
            time: crate::watch_sink::SIGNAL_GRACE,
        }
    } else {
        crate::watch_sink::Budget {
            attempts: crate::watch_sink::FINAL_ATTEMPTS,
            time: crate::watch_sink::FINAL_TIME,
        }
    };
    STOP.store(false, Ordering::SeqCst);
    let sink_failed =
        crate::watch_sink::end_all(shippers, budget, signalled, || STOP.load(Ordering::SeqCst));
    eprintln!("{}", w.stats_line(started));
    if sink_failed && status == ExitCode::SUCCESS {
        ExitCode::from(1)
    } else {
        status
    }
}

fn watch_stdin(args: &WatchArgs, w: &mut Watch, started: Instant) -> ExitCode {
    // A reader thread: the main loop keeps its timers (idle flush, stats, signals) while stdin
    // blocks.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut partial = Vec::new();
    let mut offset = 0u64;
    let mut last_input = Instant::now();
    let mut last_stats = Instant::now();
    loop {
        if STOP.load(Ordering::SeqCst) || w.failed {
            break;
        }
        service_signals(args, w, started, &mut last_stats);
        match rx.recv_timeout(Duration::from_millis(args.poll_ms.max(10))) {
            Ok(bytes) => {
                partial.extend_from_slice(&bytes);
                let whole = partial
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let rest = partial.split_off(whole);
                let lines = std::mem::replace(&mut partial, rest);
                w.feed(&lines, "-", offset);
                offset += lines.len() as u64;
                last_input = Instant::now();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if last_input.elapsed() >= IDLE_FLUSH {
                    w.flush("-", offset);
                } else {
                    w.settle("-", offset);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if !partial.is_empty() {
                    partial.push(b'\n');
                    let lines = std::mem::take(&mut partial);
                    w.feed(&lines, "-", offset);
                }
                w.flush("-", offset);
                break;
            }
        }
    }
    if w.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn service_signals(args: &WatchArgs, w: &mut Watch, started: Instant, last_stats: &mut Instant) {
    if RELOAD.swap(false, Ordering::SeqCst) {
        match load_rules(args) {
            Ok(set) => {
                let old = std::mem::replace(&mut w.engine, new_detector(set, None));
                w.engine = new_detector(set, Some(old));
                eprintln!("unithunt watch: rules reloaded ({} rules)", set.rules.len());
            }
            Err(e) => eprintln!("error: rules not reloaded, the previous ones stay:\n{e}"),
        }
    }
    let interval = args.stats_interval;
    if STATS.swap(false, Ordering::SeqCst)
        || (interval > 0 && last_stats.elapsed() >= Duration::from_secs(interval))
    {
        *last_stats = Instant::now();
        eprintln!("{}", w.stats_line(started));
    }
}

fn save_checkpoint(path: &Path, w: &Watch, chain: &[FileId], first_from: u64, offset: u64) {
    if w.failed {
        // An alert is missing from the journal: the checkpoint must stay before its event.
        return;
    }
    w.journal.sync();
    let cp = Checkpoint {
        chain: chain.to_vec(),
        first_from,
        offset,
        last_event_id: w.last_event_id.clone(),
        saved_ms: now_ms(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = write_atomic(
        path,
        format!(
            "{}\n",
            neutral::to_string(&cp.to_json()).unwrap_or_default()
        )
        .as_bytes(),
    ) {
        eprintln!("error: checkpoint {}: {e}", escape(&path.to_string_lossy()));
    }
}

/// Reads what `file` holds from `from` on, in chunks of [`READ_CHUNK`], feeding whole lines;
/// returns the bytes read and how many of them were whole lines, or `None` when a signal (or a
/// journal failure) stopped it.
fn replay_file(
    w: &mut Watch,
    file: &mut std::fs::File,
    name: &str,
    from: u64,
) -> Option<(Vec<u8>, u64)> {
    if let Err(e) = file.seek(SeekFrom::Start(from)) {
        eprintln!("warning: {}: {e}", escape(name));
        return Some((Vec::new(), 0));
    }
    let mut pending = Vec::new();
    let mut fed = 0u64;
    loop {
        if STOP.load(Ordering::SeqCst) || w.failed {
            return None;
        }
        let mut chunk = Vec::new();
        match Read::by_ref(file).take(READ_CHUNK).read_to_end(&mut chunk) {
            Ok(0) => return Some((pending, fed)),
            Ok(_) => {}
            Err(e) => {
                eprintln!("warning: {}: {e}", escape(name));
                return Some((pending, fed));
            }
        }
        pending.extend_from_slice(&chunk);
        let whole = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let rest = pending.split_off(whole);
        w.feed(&pending, name, from + fed);
        fed += whole as u64;
        pending = rest;
        if pending.len() > MAX_LINE {
            // As the follower does: a line this long is dropped (its tail is junk to the converter).
            fed += pending.len() as u64;
            pending.clear();
            w.stats.skipped += 1;
        }
    }
}

/// Why a log is refused, as the exit status.
fn refused(e: &str) -> ExitCode {
    eprintln!(
        "error: {e} (watch follows a regular log file; `-` reads standard input, a pipe included)"
    );
    ExitCode::from(2)
}

/// A restart: the state is rebuilt by replaying what the checkpoint's chain still holds, plus what
/// was rotated since (the journal keeps alerts raised before from being raised again); the
/// follower goes on where the replay ended. `Err` is the exit status when it stopped meanwhile.
fn resume(
    args: &WatchArgs,
    w: &mut Watch,
    cp: &Checkpoint,
    chain: &mut Vec<FileId>,
    first_from: &mut u64,
) -> Result<Follower, ExitCode> {
    let plan = replay_plan(&args.path, cp);
    let count = plan.len();
    let mut resumed = None;
    for (i, mut r) in plan.into_iter().enumerate() {
        let name = r.path.to_string_lossy().into_owned();
        let Some((rest, fed)) = replay_file(w, &mut r.file, &name, r.from) else {
            // Stopped during the replay: the checkpoint stays as it was.
            return Err(if w.failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        };
        if chain.is_empty() {
            *first_from = r.from;
        }
        chain.push(r.id);
        let end = r.from + fed + rest.len() as u64;
        if i + 1 == count && r.is_log {
            // Go on following this very file (even if it is rotated meanwhile).
            resumed = Some(Follower {
                path: args.path.clone(),
                file: Some(r.file),
                id: Some(r.id),
                offset: end,
                partial: rest,
                more: false,
                dropping: false,
                oversized: 0,
                problem: None,
            });
        } else {
            if !rest.is_empty() {
                // The torn last line of a rotated file is complete.
                let mut line = rest;
                line.push(b'\n');
                w.feed(&line, &name, r.from + fed);
            }
            w.flush(&name, end);
        }
    }
    eprintln!(
            "unithunt watch: resumed from {} after replaying {count} file(s) ({} alert(s) already raised, not repeated)",
            escape(&args.checkpoint.to_string_lossy()),
            w.stats.duplicates
        );
    match resumed {
        Some(f) => Ok(f),
        None => Follower::open(&args.path, Some(0)).map_err(|e| refused(&e)),
    }
}

fn watch_file(
    args: &WatchArgs,
    w: &mut Watch,
    checkpoint: Option<Checkpoint>,
    started: Instant,
) -> ExitCode {
    let shown = args.path.to_string_lossy().into_owned();
    // The log itself is checked first: a FIFO or a device is refused before anything is read.
    if let Err(e) = open_regular(&args.path) {
        return refused(&e);
    }
    // The chain of files read, and where reading began in its first.
    let mut chain: Vec<FileId> = Vec::new();
    let mut first_from = 0u64;
    let mut follower = match &checkpoint {
        Some(cp) => match resume(args, w, cp, &mut chain, &mut first_from) {
            Ok(f) => f,
            Err(code) => return code,
        },
        None => match Follower::open(&args.path, if args.from_start { Some(0) } else { None }) {
            Ok(f) => {
                first_from = f.offset;
                f
            }
            Err(e) => return refused(&e),
        },
    };
    if let Some(id) = follower.id {
        if chain.last() != Some(&id) {
            chain.push(id);
        }
    } else if !args.exit_at_eof {
        eprintln!(
            "unithunt watch: {} does not exist yet; waiting for it",
            escape(&shown)
        );
    }
    let mut since_checkpoint = 0u64;
    let mut last_checkpoint = Instant::now();
    let mut last_input = Instant::now();
    let mut last_stats = Instant::now();
    let mut open_events = false;
    // The last problem reported about the file the name leads to (reported once, not each poll).
    let mut reported: Option<String> = None;
    let mut oversized = 0u64;
    save_checkpoint(&args.checkpoint, w, &chain, first_from, follower.position());
    loop {
        if STOP.load(Ordering::SeqCst) || w.failed {
            break;
        }
        service_signals(args, w, started, &mut last_stats);
        let events_before = w.stats.events;
        match follower.poll() {
            Polled::Lines(lines, at) => {
                if !lines.is_empty() {
                    w.feed(&lines, &shown, at);
                    last_input = Instant::now();
                    open_events = true;
                } else if open_events && last_input.elapsed() >= IDLE_FLUSH {
                    w.flush(&shown, at);
                    open_events = false;
                } else if args.exit_at_eof && !follower.more {
                    w.flush(&shown, at);
                    break;
                } else if open_events {
                    w.settle(&shown, at);
                }
            }
            Polled::Rotated(lines, at) => {
                w.feed(&lines, &shown, at);
                // As `scan` does at the end of each file.
                w.flush(&shown, at);
                open_events = false;
                if let Some(id) = follower.id {
                    chain.push(id);
                    if chain.len() > CHAIN_MAX {
                        chain.remove(0);
                        first_from = 0;
                    }
                }
                save_checkpoint(&args.checkpoint, w, &chain, first_from, follower.position());
                if follower.problem.is_none() {
                    continue;
                }
            }
        }
        if follower.oversized > oversized {
            eprintln!(
                "warning: {}: {} line(s) longer than {MAX_LINE} bytes dropped",
                escape(&shown),
                follower.oversized - oversized
            );
            w.stats.skipped += follower.oversized - oversized;
            oversized = follower.oversized;
        }
        since_checkpoint += w.stats.events - events_before;
        if since_checkpoint >= args.checkpoint_every
            || last_checkpoint.elapsed() >= Duration::from_secs(5)
        {
            save_checkpoint(&args.checkpoint, w, &chain, first_from, follower.position());
            since_checkpoint = 0;
            last_checkpoint = Instant::now();
        }
        if follower.file.is_none() {
            let problem = follower.problem.take();
            match problem.map_or_else(|| Follower::open(&args.path, Some(0)), Err) {
                Ok(f) => {
                    follower = Follower {
                        oversized: follower.oversized,
                        ..f
                    };
                    if let Some(id) = follower.id {
                        chain.push(id);
                        if reported.take().is_some() {
                            eprintln!(
                                "unithunt watch: {} is a regular file again; following it",
                                escape(&shown)
                            );
                        }
                    }
                }
                Err(e) => {
                    // Replaced by a FIFO, a device or something unreadable mid-run: reported
                    // once, and watch waits for a regular file to be there again.
                    if reported.as_deref() != Some(e.as_str()) {
                        eprintln!("error: {e}; not read, waiting for a regular file there");
                        reported = Some(e);
                    }
                    if args.exit_at_eof {
                        break;
                    }
                }
            }
        }
        if !follower.more {
            sleep_unless_stopped(Duration::from_millis(args.poll_ms));
        }
    }
    save_checkpoint(&args.checkpoint, w, &chain, first_from, follower.position());
    if w.failed || (args.exit_at_eof && reported.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Sleeps `d`, or less when a signal asks watch to stop.
fn sleep_unless_stopped(d: Duration) {
    let end = Instant::now() + d;
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// `unithunt setup audit-rules`: the audit rules the rule pack needs.
pub const AUDIT_RULES: &str = "\
## unithunt: what the rule pack needs from auditd (augenrules reads /etc/audit/rules.d/).
## Unit files and drop-ins written, renamed, linked or changed, in every system load path:
-w /etc/systemd/ -p wa -k unithunt
-w /usr/lib/systemd/ -p wa -k unithunt
-w /usr/local/lib/systemd/ -p wa -k unithunt
-w /lib/systemd/ -p wa -k unithunt
-w /run/systemd/system/ -p wa -k unithunt
-w /run/systemd/transient/ -p wa -k unithunt
-w /run/systemd/generator/ -p wa -k unithunt
-w /run/systemd/generator.early/ -p wa -k unithunt
-w /run/systemd/generator.late/ -p wa -k unithunt
## User units under home directories (~/.config/systemd/user, ~/.local/share/systemd/user):
-a always,exit -F arch=b64 -S creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat -F dir=/home -k unithunt
-a always,exit -F arch=b64 -S openat,open -F dir=/home -F a2&0100 -k unithunt
-a always,exit -F arch=b64 -S creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat -F dir=/root -k unithunt
## Every program started (activation, ancestry):
-a always,exit -F arch=b64 -S execve,execveat -k unithunt
-a always,exit -F arch=b32 -S execve,execveat -k unithunt
";

#[derive(clap::Subcommand)]
pub enum SetupCommand {
    /// Print the audit rules the rule pack needs (with --install, write them to
    /// /etc/audit/rules.d/unithunt.rules and load them with augenrules).
    AuditRules {
        #[arg(long)]
        install: bool,
    },
}

pub fn setup(cmd: SetupCommand) -> ExitCode {
    match cmd {
        SetupCommand::AuditRules { install: false } => {
            print!("{AUDIT_RULES}");
            ExitCode::SUCCESS
        }
        SetupCommand::AuditRules { install: true } => {
            let path = Path::new("/etc/audit/rules.d/unithunt.rules");
            if let Err(e) = write_atomic(path, AUDIT_RULES.as_bytes()) {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", path.display());
            match std::process::Command::new("augenrules")
                .arg("--load")
                .status()
            {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => {
                    eprintln!("error: augenrules --load: {s}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!(
                        "error: augenrules: {e} (load them with: auditctl -R {})",
                        path.display()
                    );
                    ExitCode::from(2)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_are_written_atomically() {
        let dir = std::env::temp_dir().join(format!("unithunt-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cp = Checkpoint {
            chain: vec![FileId { dev: 1, ino: 2 }, FileId { dev: 1, ino: 3 }],
            first_from: 77,
            offset: 1234,
            last_event_id: "1795806430.136:6398".into(),
            saved_ms: 5,
        };
        let path = dir.join("cp");
        write_atomic(&path, cp.to_json().to_string().as_bytes()).unwrap();
        let back = Checkpoint::load(&path).unwrap().unwrap();
        assert_eq!(
            (back.chain, back.first_from, back.offset),
            (cp.chain, 77, 1234)
        );
        assert_eq!(back.last_event_id, cp.last_event_id);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::write(&path, "{}").unwrap();
        assert!(Checkpoint::load(&path).is_err());
        assert!(Checkpoint::load(&dir.join("none")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_journal_cuts_a_torn_line_and_remembers_ids() {
        let dir = std::env::temp_dir().join(format!("unithunt-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("alerts.ndjson");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            &path,
            "{\"kibana.alert.uuid\":\"a\"}\n{\"kibana.alert.uuid\":\"b\"",
        )
        .unwrap();
        let mut j = Journal::open(&path, 1 << 20).unwrap();
        assert!(j.contains("a") && !j.contains("b"));
        assert!(!j.append("a", b"{\"kibana.alert.uuid\":\"a\"}").unwrap());
        assert!(j.append("b", b"{\"kibana.alert.uuid\":\"b\"}").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"kibana.alert.uuid\":\"a\"}\n{\"kibana.alert.uuid\":\"b\"}\n"
        );
        // Rotation keeps one previous file, whose ids still count.
        let mut small = Journal::open(&path, 10).unwrap();
        assert!(small.append("c", b"{\"kibana.alert.uuid\":\"c\"}").unwrap());
        let again = Journal::open(&path, 10).unwrap();
        assert!(["a", "b", "c"].iter().all(|id| again.contains(id)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn syslog_messages_follow_rfc5424() {
        let alert = json!({
            "kibana.alert.severity": "high",
            "kibana.alert.rule.name": "Rule \"x\" [y]",
            "kibana.alert.uuid": "u-1",
        });
        let m = syslog_message(&alert, "web01");
        assert!(m.starts_with("<107>1 "), "{m}");
        assert!(m.contains(" web01 unithunt "), "{m}");
        assert!(
            m.contains("[unithunt@32473 rule=\"Rule \\\"x\\\" [y\\]\" id=\"u-1\"]"),
            "{m}"
        );
        let long = json!({"process": {"command_line": "x".repeat(100_000)}});
        assert!(syslog_message(&long, "h").len() < 2048);
    }
}
