//! The loops that drive a [`Watch`]: a followed file (with its checkpoint, replay at restart and
//! rotation) and standard input (an auditd dispatcher plugin).

use super::checkpoint::{replay_plan, Checkpoint, FileId, CHAIN_MAX};
use super::follow::{Follower, Polled, MAX_LINE, READ_CHUNK};
use super::state::{now_ms, open_regular, write_atomic};
use super::{new_detector, Control, Watch, WatchOptions, IDLE_FLUSH};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use unithunt_event::neutral;
use unithunt_output::term::escape;

pub fn watch_stdin(
    args: &WatchOptions,
    ctl: &Control<'_>,
    w: &mut Watch,
    started: Instant,
) -> ExitCode {
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
        if ctl.signals.stop.load(Ordering::SeqCst) || w.failed {
            break;
        }
        service_signals(args, ctl, w, started, &mut last_stats);
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

fn service_signals(
    args: &WatchOptions,
    ctl: &Control<'_>,
    w: &mut Watch,
    started: Instant,
    last_stats: &mut Instant,
) {
    if ctl.signals.reload.swap(false, Ordering::SeqCst) {
        match (ctl.rules)() {
            Ok(set) => {
                let old = std::mem::replace(&mut w.engine, new_detector(set, None));
                w.engine = new_detector(set, Some(old));
                eprintln!("unithunt watch: rules reloaded ({} rules)", set.rules.len());
            }
            Err(e) => eprintln!("error: rules not reloaded, the previous ones stay:\n{e}"),
        }
    }
    let interval = args.stats_interval;
    if ctl.signals.stats.swap(false, Ordering::SeqCst)
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
        last_event_id: w.stats.last_event_id.clone(),
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
    ctl: &Control<'_>,
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
        if ctl.signals.stop.load(Ordering::SeqCst) || w.failed {
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
    args: &WatchOptions,
    ctl: &Control<'_>,
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
        let Some((rest, fed)) = replay_file(w, ctl, &mut r.file, &name, r.from) else {
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

pub fn watch_file(
    args: &WatchOptions,
    ctl: &Control<'_>,
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
        Some(cp) => match resume(args, ctl, w, cp, &mut chain, &mut first_from) {
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
        if ctl.signals.stop.load(Ordering::SeqCst) || w.failed {
            break;
        }
        service_signals(args, ctl, w, started, &mut last_stats);
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
            sleep_unless_stopped(ctl, Duration::from_millis(args.poll_ms));
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
fn sleep_unless_stopped(ctl: &Control<'_>, d: Duration) {
    let end = Instant::now() + d;
    while !ctl.signals.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
