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
}

/// Ancestors listed for an event, at most.
pub const MAX_ANCESTRY: usize = 16;

impl ProcessTable {
    pub fn new(capacity: usize) -> ProcessTable {
        ProcessTable {
            procs: HashMap::new(),
            capacity: capacity.max(16),
            clock: 0,
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
    pub fn ancestry(&mut self, ppid: i64) -> Vec<ProcInfo> {
        let mut out: Vec<ProcInfo> = Vec::new();
        let mut pid = ppid;
        while out.len() < MAX_ANCESTRY && pid > 0 {
            let Some(info) = self.get(pid).cloned() else {
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
        let names: Vec<String> = t.ancestry(20).iter().map(|a| a.name.to_string()).collect();
        assert_eq!(names, ["bash", "sshd", "systemd"]);
        t.record(p(30, 31, "a"));
        t.record(p(31, 30, "b"));
        assert_eq!(t.ancestry(30).len(), 2);
        // A fork copies the parent's image; a later exec replaces it.
        t.fork(20, 21, "n:21:5".into());
        assert_eq!(t.get(21).unwrap().name.as_ref(), "bash");
        t.record(p(21, 20, "systemctl"));
        assert_eq!(t.get(21).unwrap().name.as_ref(), "systemctl");
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
