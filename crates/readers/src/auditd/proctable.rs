//! Process ancestry from the audit stream itself.
//!
//! Raw audit records name only the parent's pid. Each successful `execve` tells what a pid runs
//! from then on, and each audited `fork`/`clone` that a child pid starts as a copy of its parent;
//! the table keeps that, so later events get `process.parent.*` and their chain of ancestors.
//! Bounded: at most `capacity` processes, the least recently seen dropped first. A pid reused by an
//! unrelated process is replaced as soon as the new process's fork or exec is seen; without either
//! (fork not audited and the new process never execs), the old entry stands — the price of rules
//! that audit only `execve`, said in the ECS mapping document.

use std::collections::HashMap;
use std::sync::Arc;

/// What is known of one process image.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcInfo {
    pub pid: i64,
    pub ppid: i64,
    pub name: Arc<str>,
    pub executable: Arc<str>,
    pub args: Arc<[String]>,
    /// `node:pid:serial` of the event that started this image: a stable id for `entity_id`.
    pub entity_id: Arc<str>,
}

pub struct ProcessTable {
    procs: HashMap<i64, (ProcInfo, u64)>,
    capacity: usize,
    clock: u64,
    /// Look up processes the stream never showed in this host's `/proc` (see [`ProcRoot`]).
    proc_root: Option<ProcRoot>,
    /// Pids already looked up in `/proc` and not usable: not looked up again.
    proc_misses: std::collections::HashSet<i64>,
}

/// This host's `/proc`, for logs of this host: a parent that started before the log began is in
/// no record, but may still run. Used only when the running process is provably the one the log
/// names: it started no later than the event that refers to it (its start time from
/// `/proc/PID/stat` and the boot time from `/proc/stat`), so a pid reused since is not taken for it.
pub struct ProcRoot {
    pub path: std::path::PathBuf,
    boot_ms: i64,
    ticks_per_sec: i64,
}

impl ProcRoot {
    /// The host's `/proc`, if it can be read.
    pub fn host() -> Option<ProcRoot> {
        ProcRoot::at(std::path::Path::new("/proc"))
    }

    pub fn at(path: &std::path::Path) -> Option<ProcRoot> {
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        let btime: i64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(ProcRoot {
            path: path.to_path_buf(),
            boot_ms: btime * 1000,
            // USER_HZ is 100 on every Linux architecture unithunt supports.
            ticks_per_sec: 100,
        })
    }

    /// The process `pid` if it started no later than `before_ms`.
    fn lookup(&self, pid: i64, before_ms: i64) -> Option<ProcInfo> {
        let dir = self.path.join(pid.to_string());
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; fields follow the last `)`.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        let ppid: i64 = fields.get(1)?.parse().ok()?;
        let start_ticks: i64 = fields.get(19)?.parse().ok()?;
        let start_ms = self.boot_ms + start_ticks * 1000 / self.ticks_per_sec;
        if start_ms > before_ms {
            return None;
        }
        let executable = std::fs::read_link(dir.join("exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let args: Vec<String> = std::fs::read(dir.join("cmdline"))
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        let name = match executable.rsplit('/').next() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => comm.to_string(),
        };
        Some(ProcInfo {
            pid,
            ppid,
            name: name.into(),
            executable: executable.into(),
            args: args.into(),
            entity_id: format!("proc:{pid}:{start_ticks}").into(),
        })
    }
}

/// Ancestors listed for an event, at most.
pub const MAX_ANCESTRY: usize = 16;

impl ProcessTable {
    pub fn new(capacity: usize) -> ProcessTable {
        ProcessTable {
            procs: HashMap::new(),
            capacity: capacity.max(16),
            clock: 0,
            proc_root: None,
            proc_misses: Default::default(),
        }
    }

    /// Also look up unknown processes in this host's `/proc` (for logs of this host only).
    pub fn with_proc(mut self, root: Option<ProcRoot>) -> ProcessTable {
        self.proc_root = root;
        self
    }

    /// A process the stream never showed, from `/proc` when enabled and provably the same one.
    fn look_up_in_proc(&mut self, pid: i64, at_ms: i64) -> Option<ProcInfo> {
        let root = self.proc_root.as_ref()?;
        if pid <= 0 || self.proc_misses.contains(&pid) {
            return None;
        }
        match root.lookup(pid, at_ms) {
            Some(info) => {
                self.record(info.clone());
                Some(info)
            }
            None => {
                if self.proc_misses.len() < 65_536 {
                    self.proc_misses.insert(pid);
                }
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Records what `info.pid` runs now (after an exec or a fork).
    pub fn record(&mut self, info: ProcInfo) {
        self.clock += 1;
        if self.procs.len() >= self.capacity && !self.procs.contains_key(&info.pid) {
            self.evict();
        }
        self.procs.insert(info.pid, (info, self.clock));
    }

    /// A fork/clone: `child` starts as a copy of `parent` (if known).
    pub fn fork(&mut self, parent: i64, child: i64, entity_id: Arc<str>) {
        let Some((p, _)) = self.procs.get(&parent) else {
            return;
        };
        let info = ProcInfo {
            pid: child,
            ppid: parent,
            entity_id,
            ..p.clone()
        };
        self.record(info);
    }

    pub fn get(&mut self, pid: i64) -> Option<&ProcInfo> {
        self.clock += 1;
        let clock = self.clock;
        self.procs.get_mut(&pid).map(|(info, seen)| {
            *seen = clock;
            &*info
        })
    }

    /// The known ancestors of a process whose parent is `ppid`, nearest first, at most
    /// [`MAX_ANCESTRY`], stopping at a loop or an unknown pid.
    /// `at_ms` is the time of the event asking (for the `/proc` fallback).
    pub fn ancestry(&mut self, ppid: i64, at_ms: i64) -> Vec<ProcInfo> {
        let mut out: Vec<ProcInfo> = Vec::new();
        let mut pid = ppid;
        while out.len() < MAX_ANCESTRY && pid > 0 {
            let known = self.get(pid).cloned();
            let Some(info) = known.or_else(|| self.look_up_in_proc(pid, at_ms)) else {
                break;
            };
            if out.iter().any(|a| a.pid == info.pid) {
                break;
            }
            pid = info.ppid;
            out.push(info);
        }
        out
    }

    /// Drops the least recently seen eighth of the table (amortised: one scan per many inserts).
    fn evict(&mut self) {
        let mut seen: Vec<u64> = self.procs.values().map(|(_, s)| *s).collect();
        let cut = seen.len() / 8;
        seen.select_nth_unstable(cut);
        let threshold = seen[cut];
        self.procs.retain(|_, (_, s)| *s > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i64, ppid: i64, name: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            name: name.into(),
            executable: format!("/usr/bin/{name}").into(),
            args: vec![name.to_string()].into(),
            entity_id: format!("n:{pid}:0").into(),
        }
    }

    #[test]
    fn ancestry_follows_parents_and_stops_at_loops() {
        let mut t = ProcessTable::new(100);
        t.record(p(1, 0, "systemd"));
        t.record(p(10, 1, "sshd"));
        t.record(p(20, 10, "bash"));
        let names: Vec<String> = t
            .ancestry(20, 0)
            .iter()
            .map(|a| a.name.to_string())
            .collect();
        assert_eq!(names, ["bash", "sshd", "systemd"]);
        t.record(p(30, 31, "a"));
        t.record(p(31, 30, "b"));
        assert_eq!(t.ancestry(30, 0).len(), 2);
        // A fork copies the parent's image; a later exec replaces it.
        t.fork(20, 21, "n:21:5".into());
        assert_eq!(t.get(21).unwrap().name.as_ref(), "bash");
        t.record(p(21, 20, "systemctl"));
        assert_eq!(t.get(21).unwrap().name.as_ref(), "systemctl");
    }

    /// This test's own process and its parent are in /proc; they started before now, not before
    /// the epoch.
    #[test]
    fn proc_fallback_only_for_processes_older_than_the_event() {
        let Some(root) = ProcRoot::host() else {
            return;
        };
        let me = std::process::id() as i64;
        let mut t = ProcessTable::new(100).with_proc(Some(root));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            t.ancestry(me, 0).is_empty(),
            "a process younger than the event is not it"
        );
        let mut t = ProcessTable::new(100).with_proc(ProcRoot::host());
        let chain = t.ancestry(me, now + 1000);
        assert_eq!(chain[0].pid, me);
        assert!(!chain[0].executable.is_empty());
        assert!(
            chain.len() >= 2,
            "the parent comes from /proc too: {chain:?}"
        );
    }

    #[test]
    fn the_table_is_bounded_and_keeps_recent_processes() {
        let mut t = ProcessTable::new(64);
        t.record(p(1, 0, "init"));
        for pid in 2..10_000 {
            t.record(p(pid, 1, "x"));
            t.get(1);
        }
        assert!(t.len() <= 64);
        assert!(t.get(1).is_some(), "a parent still referenced stays");
        assert!(t.get(9_999).is_some());
    }
}
