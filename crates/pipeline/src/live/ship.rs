//! How `watch` ships alerts to a remote sink (HTTP `_bulk`, syslog): one mechanism for all of
//! them. The alert journal is the spool: a shipper thread reads it from a persisted position
//! (journal inode and offset, saved atomically after each delivered batch), hands whole lines to
//! a [`Transport`], and on failure keeps the alerts in the journal and retries with exponential
//! back-off, saying so once per outage on stderr (the target, the error, and how many alerts wait).
//!
//! When watch ends, each sink gets a bounded budget to deliver what is left ([`Budget`]); a
//! signal ends it at once. What was not delivered stays in the journal for the next run.

use serde_json::Value as Json;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes of journal lines per delivery at most.
const BATCH_BYTES: u64 = 4 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// After the input ends (`--exit-at-eof`, end of stdin), a sink still failing gets at most this
/// many further attempts…
pub const FINAL_ATTEMPTS: u32 = 5;
/// …within at most this long; then watch gives up with status 1.
pub const FINAL_TIME: Duration = Duration::from_secs(30);
/// When a signal stops watch, a sink that is delivering gets this long to catch up; one that is
/// failing gets no further attempt.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// A sink's way of delivering journal lines (defined with the media in `unithunt-output`).
pub use unithunt_output::transport::Transport;

/// An Elasticsearch-compatible `_bulk` endpoint to ship alerts to.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    pub url: String,
    /// The index the actions name.
    pub index: String,
    /// `Name: value` headers (authorisation).
    pub headers: Vec<String>,
}

/// The remote sinks a live driver ships its journal to.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    pub http: Option<HttpTarget>,
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:PATH`.
    pub syslog: Option<String>,
}

/// One shipper per remote sink, each reading `journal` from its own position file beside
/// `state` (`STATE.http`, `STATE.syslog`). An error: a syslog address that does not parse, or a
/// journal that is not a regular file (a device such as `/dev/null` cannot be shipped from).
pub fn start_shippers(
    remote: &Remote,
    journal: &super::Journal,
    journal_path: &Path,
    state: &Path,
) -> Result<Vec<Shipper>, String> {
    let syslog = remote
        .syslog
        .as_deref()
        .map(|a| unithunt_output::syslog::Syslog::parse(a, unithunt_output::syslog::hostname()))
        .transpose()?;
    if (syslog.is_some() || remote.http.is_some()) && !journal.is_regular() {
        return Err(format!(
            "alert journal {} is not a regular file: --http and --syslog ship alerts from it",
            journal_path.to_string_lossy()
        ));
    }
    let position = |suffix: &str| {
        let mut s = state.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut shippers = Vec::new();
    if let Some(h) = &remote.http {
        let transport =
            unithunt_output::http::Http::new(h.url.clone(), h.index.clone(), h.headers.clone());
        shippers.push(Shipper::start(
            format!("http sink {}", unithunt_output::term::escape(&h.url)),
            Box::new(transport),
            journal_path.to_path_buf(),
            position(".http"),
        ));
    }
    if let (Some(address), Some(s)) = (&remote.syslog, syslog) {
        shippers.push(Shipper::start(
            format!("syslog sink {}", unithunt_output::term::escape(address)),
            Box::new(s),
            journal_path.to_path_buf(),
            position(".syslog"),
        ));
    }
    Ok(shippers)
}

/// How long a sink may go on once watch ends.
#[derive(Clone, Copy)]
pub struct Budget {
    pub attempts: u32,
    pub time: Duration,
}

#[derive(Default)]
struct State {
    /// The last attempt failed.
    failing: bool,
    last_error: String,
    /// Failed attempts since the end was asked for.
    final_attempts: u32,
}

struct Shared {
    /// Journal lines this shipper delivered since it started.
    delivered: AtomicU64,
    finish: AtomicBool,
    abort: AtomicBool,
    budget: Mutex<Option<(Budget, Instant)>>,
    state: Mutex<State>,
}

pub struct Shipper {
    /// `http sink URL`, `syslog sink ADDRESS` (escaped for the terminal).
    name: String,
    journal: PathBuf,
    position: PathBuf,
    shared: Arc<Shared>,
    handle: std::thread::JoinHandle<()>,
    /// Journal lines waiting for this sink when it started.
    backlog: u64,
}

/// A sink's delivery count, for a driver that must know what is acknowledged (`stream` commits
/// its input offsets only once the alerts of what came before are delivered).
#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
    backlog: u64,
}

impl Progress {
    /// Of the lines appended to the journal since the sink started, how many are delivered
    /// (lines go out in journal order, after those waiting at the start).
    pub fn delivered_since_start(&self) -> u64 {
        self.shared
            .delivered
            .load(Ordering::SeqCst)
            .saturating_sub(self.backlog)
    }
}

impl Shipper {
    pub fn start(
        name: String,
        transport: Box<dyn Transport>,
        journal: PathBuf,
        position: PathBuf,
    ) -> Shipper {
        // Delivery is in journal order: once the lines waiting now are delivered, each further
        // line delivered is one appended after this moment.
        let backlog = pending(&journal, &position);
        let shared = Arc::new(Shared {
            delivered: AtomicU64::new(0),
            finish: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            budget: Mutex::new(None),
            state: Mutex::new(State::default()),
        });
        let handle = {
            let (name, journal, position, shared) = (
                name.clone(),
                journal.clone(),
                position.clone(),
                shared.clone(),
            );
            std::thread::spawn(move || ship(&name, transport, &journal, &position, &shared))
        };
        Shipper {
            name,
            journal,
            position,
            shared,
            handle,
            backlog,
        }
    }

    /// How far this sink has delivered, readable after the shipper is ended.
    pub fn progress(&self) -> Progress {
        Progress {
            shared: self.shared.clone(),
            backlog: self.backlog,
        }
    }

    /// Asks the sink to deliver what is left within `budget`.
    pub fn request_end(&self, budget: Budget) {
        if let Ok(mut b) = self.shared.budget.lock() {
            *b = Some((budget, Instant::now()));
        }
        self.shared.finish.store(true, Ordering::SeqCst);
    }

    pub fn is_done(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops the sink now (a request or reply in flight is left to die with the process: the
    /// position is saved atomically, and a batch sent again is harmless).
    pub fn abort(&self) {
        self.shared.abort.store(true, Ordering::SeqCst);
    }

    /// Reports what is left, on stderr, once the thread is done or abandoned; true when the
    /// sink ended failing (gave up, or was stopped while retrying) with alerts undelivered.
    pub fn outcome(self, since_end: Duration, signalled: bool) -> bool {
        let joined = if self.handle.is_finished() {
            let _ = self.handle.join();
            true
        } else {
            false
        };
        let undelivered = pending(&self.journal, &self.position);
        let state = self
            .shared
            .state
            .lock()
            .map(|s| (s.failing, s.last_error.clone(), s.final_attempts));
        let (failing, last_error, attempts) = state.unwrap_or((false, String::new(), 0));
        let journal = unithunt_output::term::escape(&self.journal.to_string_lossy());
        if undelivered == 0 {
            return false;
        }
        if failing {
            let why = if signalled || self.shared.abort.load(Ordering::SeqCst) || !joined {
                "stopped by a signal while retrying".to_string()
            } else {
                format!(
                    "gave up after {attempts} failed attempt(s) in {:.1} s once the input had ended (at most {FINAL_ATTEMPTS} attempts, {} s)",
                    since_end.as_secs_f64(),
                    FINAL_TIME.as_secs()
                )
            };
            eprintln!(
                "error: {}: {why} (last error: {}); {undelivered} alert(s) stay in the journal {journal} and are shipped by the next run",
                self.name,
                unithunt_output::term::escape(&last_error),
            );
        } else {
            eprintln!(
                "unithunt watch: {}: {undelivered} alert(s) not shipped yet stay in the journal {journal} and are shipped by the next run",
                self.name
            );
        }
        failing
    }
}

/// Ends every sink: each may deliver within `budget`, and a signal (`stop_now`) cuts that short.
/// `signalled`: watch itself was stopped by a signal. True when a sink ended failing.
pub fn end_all(
    shippers: Vec<Shipper>,
    budget: Budget,
    signalled: bool,
    stop_now: impl Fn() -> bool,
) -> bool {
    if shippers.is_empty() {
        return false;
    }
    let started = Instant::now();
    for s in &shippers {
        s.request_end(budget);
    }
    // The threads end within the budget (a request in flight has its own timeout); the time
    // limit here is a safety net on top of it.
    let limit = budget.time + Duration::from_secs(20);
    while !shippers.iter().all(Shipper::is_done) {
        if stop_now() || started.elapsed() >= limit {
            for s in &shippers {
                s.abort();
            }
            // A moment for them to see it between two requests.
            let end = Instant::now() + Duration::from_millis(300);
            while Instant::now() < end && !shippers.iter().all(Shipper::is_done) {
                std::thread::sleep(Duration::from_millis(10));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let since = started.elapsed();
    let mut failed = false;
    for s in shippers {
        failed |= s.outcome(since, signalled);
    }
    failed
}

/// (inode of the journal file being shipped, offset in it).
fn load_position(path: &Path) -> Option<(u64, u64)> {
    let bytes = super::state::read_state(path).ok()??;
    let j: Json = serde_json::from_slice(&bytes).ok()?;
    Some((j["ino"].as_u64()?, j["offset"].as_u64()?))
}

fn save_position(name: &str, path: &Path, ino: u64, offset: u64) {
    let doc = serde_json::json!({"ino": ino, "offset": offset});
    if let Err(e) = super::state::write_atomic(path, format!("{doc}\n").as_bytes()) {
        eprintln!(
            "error: {name}: position {}: {e}",
            unithunt_output::term::escape(&path.to_string_lossy())
        );
    }
}

fn ino_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.ino())
}

/// Whole lines of `path` from `offset`, at most about [`BATCH_BYTES`].
fn read_lines(path: &Path, offset: u64) -> Vec<u8> {
    let Ok(Some((mut f, _))) = super::state::open_regular(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(BATCH_BYTES).read_to_end(&mut buf);
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(whole);
    buf
}

fn line_count(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

fn lines_from(path: &Path, offset: u64) -> u64 {
    let Ok(Some((mut f, _))) = super::state::open_regular(path) else {
        return 0;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(k) = f.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    n
}

/// Alerts in the journal (and its rotated predecessor) after the shipped position.
pub fn pending(journal: &Path, position: &Path) -> u64 {
    let rotated = super::journal::rotated_path(journal);
    let (ino, offset) = load_position(position).unwrap_or((0, 0));
    if Some(ino) == ino_of(journal) {
        lines_from(journal, offset)
    } else if Some(ino) == ino_of(&rotated) {
        lines_from(&rotated, offset) + lines_from(journal, 0)
    } else {
        lines_from(&rotated, 0) + lines_from(journal, 0)
    }
}

fn ship(
    name: &str,
    mut transport: Box<dyn Transport>,
    journal: &Path,
    position: &Path,
    shared: &Shared,
) {
    let rotated = super::journal::rotated_path(journal);
    let (mut ino, mut offset) = load_position(position).unwrap_or((0, 0));
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    let finishing = || shared.finish.load(Ordering::SeqCst);
    let budget = || shared.budget.lock().ok().and_then(|b| *b);
    let aborted = || shared.abort.load(Ordering::SeqCst);
    // Past the time the budget gives (only once the end was asked for).
    let out_of_time = || budget().is_some_and(|(b, at)| at.elapsed() >= b.time);
    // Sleeps `d` in slices; false when the sink must stop instead.
    let wait = |d: Duration, failing: bool| -> bool {
        let end = Instant::now() + d;
        loop {
            if aborted() || out_of_time() {
                return false;
            }
            if failing && finishing() {
                let made = shared.state.lock().map_or(0, |s| s.final_attempts);
                if budget().is_none_or(|(b, _)| made >= b.attempts) {
                    return false;
                }
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    };
    loop {
        if aborted() {
            return;
        }
        // Which file holds the position: the journal, its rotated predecessor, or neither.
        let current = ino_of(journal);
        let previous = ino_of(&rotated);
        let path = if Some(ino) == current {
            journal.to_path_buf()
        } else if Some(ino) == previous {
            rotated.clone()
        } else {
            // First run, or the position's file is gone: start at the oldest file kept.
            if ino != 0 {
                eprintln!(
                    "warning: {name}: the journal rotated twice while the sink was down; \
                     alerts in between were not shipped (they are in no file any more)"
                );
            }
            match (previous, current) {
                (Some(p), _) => (ino, offset) = (p, 0),
                (None, Some(c)) => (ino, offset) = (c, 0),
                (None, None) => {}
            }
            if ino == 0 && (finishing() || !wait(Duration::from_millis(100), false)) {
                return;
            }
            continue;
        };
        let lines = read_lines(&path, offset);
        if lines.is_empty() {
            if path == rotated {
                // The rotated file is done: the journal is next.
                if let Some(c) = current {
                    (ino, offset) = (c, 0);
                    save_position(name, position, ino, offset);
                    continue;
                }
            }
            if finishing() || !wait(Duration::from_millis(50), false) {
                return;
            }
            continue;
        }
        match transport.deliver(&lines) {
            Ok(()) => {
                if failing {
                    eprintln!("unithunt watch: {name} delivering again");
                }
                failing = false;
                if let Ok(mut s) = shared.state.lock() {
                    s.failing = false;
                }
                backoff = BACKOFF_MIN;
                offset += lines.len() as u64;
                shared
                    .delivered
                    .fetch_add(line_count(&lines), Ordering::SeqCst);
                save_position(name, position, ino, offset);
            }
            Err((delivered, e)) => {
                if delivered > 0 {
                    offset += delivered as u64;
                    shared.delivered.fetch_add(
                        line_count(&lines[..delivered.min(lines.len())]),
                        Ordering::SeqCst,
                    );
                    save_position(name, position, ino, offset);
                }
                if let Ok(mut s) = shared.state.lock() {
                    s.failing = true;
                    s.last_error = e.clone();
                    if finishing() {
                        s.final_attempts += 1;
                    }
                }
                if !failing {
                    // `e` may quote the target's reply (an HTTP error body): the target's text,
                    // escaped like any other untrusted text.
                    eprintln!(
                        "warning: {name}: {}; alerts are kept in the journal and retried ({} alert(s) waiting)",
                        unithunt_output::term::escape(&e),
                        pending(journal, position)
                    );
                }
                failing = true;
                if !wait(backoff, true) {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        if aborted() || out_of_time() {
            return;
        }
    }
}
