//! The alert journal as a stream worker's spool for its remote sinks (`--http`, `--syslog`):
//! alerts are appended to the journal, the shippers of `unithunt_pipeline::live::ship` deliver
//! it (position, retries, back-off, as for `watch`), and input offsets are committed only once
//! every sink has delivered the alerts raised before them.
//!
//! Each commit point is a snapshot: the number of alerts the journal had taken, and the offset
//! of each partition then. A snapshot is released once every sink has delivered that many of
//! the alerts appended since it started; the newest released offsets are committed. A sink that
//! is down holds commits back (the group re-reads from the last commit after a crash: at least
//! once), not the worker.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use unithunt_pipeline::live::ship::{self, start_shippers, Budget, Progress, Remote, Shipper};
use unithunt_pipeline::live::{state::lock_beside, Journal};

/// Snapshots waiting for their alerts' delivery at most; past it the two oldest are merged
/// into the later one (a later commit, never an early one).
const AWAITING_MAX: usize = 4096;

/// Where each partition may be committed.
pub type Offsets = BTreeMap<(String, i32), i64>;

pub struct Spool {
    journal: Journal,
    shippers: Vec<Shipper>,
    progress: Vec<Progress>,
    /// (alerts the journal had taken, the offsets then), oldest first.
    awaiting: VecDeque<(u64, Offsets)>,
    /// Held while the worker runs: no other process spools into this journal.
    _lock: std::fs::File,
}

impl Spool {
    /// Where a worker of `group` keeps its journal unless told: one file per group, locked, so
    /// a second worker of the group on the host is told to give its own.
    pub fn default_path(group: &str) -> PathBuf {
        PathBuf::from(format!(
            "/var/lib/unithunt/stream-{}.alerts.ndjson",
            group.replace(['/', '\0'], "_")
        ))
    }

    /// Locks and opens the journal at `path` (rotated past `max_bytes`) and starts a shipper per
    /// remote sink, their positions beside it (`FILE.http`, `FILE.syslog`).
    pub fn open(path: &Path, max_bytes: u64, remote: &Remote) -> Result<Spool, String> {
        let lock = lock_beside(path)?;
        let journal = Journal::open(path, max_bytes)
            .map_err(|e| format!("alert journal {e} (give --alerts FILE to keep it elsewhere)"))?;
        let shippers = start_shippers(remote, &journal, path, path)?;
        Ok(Spool::new(journal, shippers, lock))
    }

    pub fn new(journal: Journal, shippers: Vec<Shipper>, lock: std::fs::File) -> Spool {
        let progress = shippers.iter().map(Shipper::progress).collect();
        Spool {
            journal,
            shippers,
            progress,
            awaiting: VecDeque::new(),
            _lock: lock,
        }
    }

    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Records a commit point, and returns the offsets of the newest one whose alerts every
    /// sink has delivered (empty when none is yet).
    pub fn release(&mut self, now: Offsets) -> Offsets {
        self.journal.sync();
        self.awaiting.push_back((self.journal.appended(), now));
        if self.awaiting.len() > AWAITING_MAX {
            // The next snapshot (a later count, later offsets) stands for both.
            self.awaiting.pop_front();
        }
        self.pop_released()
    }

    fn pop_released(&mut self) -> Offsets {
        let delivered = self.delivered();
        let mut released = Offsets::new();
        while self.awaiting.front().is_some_and(|(n, _)| *n <= delivered) {
            if let Some((_, offsets)) = self.awaiting.pop_front() {
                released.extend(offsets);
            }
        }
        released
    }

    /// Alerts appended since the start that every sink has delivered.
    fn delivered(&self) -> u64 {
        self.progress
            .iter()
            .map(Progress::delivered_since_start)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// A partition taken away: its waiting commit points go (its next owner re-reads them).
    pub fn forget(&mut self, key: &(String, i32)) {
        for (_, offsets) in &mut self.awaiting {
            offsets.remove(key);
        }
    }

    /// Alerts not yet delivered by every sink.
    pub fn undelivered(&self) -> u64 {
        self.journal.appended().saturating_sub(self.delivered())
    }

    /// Ends the sinks within `budget` (cut short when `stop_now`), then releases what they
    /// delivered. True when a sink ended failing.
    pub fn end(
        &mut self,
        budget: Budget,
        signalled: bool,
        stop_now: impl Fn() -> bool,
    ) -> (bool, Offsets) {
        self.journal.sync();
        let failed = ship::end_all(
            std::mem::take(&mut self.shippers),
            budget,
            signalled,
            stop_now,
        );
        (failed, self.pop_released())
    }
}
