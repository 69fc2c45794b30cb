//! The checkpoint (the chain of log files read) and the replay plan built from it at restart.

use super::state::{open_regular, read_state};
use serde_json::{json, Value as Json};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use unithunt_output::term::escape;

/// At restart, at most this many bytes of the log are replayed to rebuild state.
pub const REPLAY_LIMIT: u64 = 256 << 20;
/// Log files remembered in the checkpoint's chain.
pub const CHAIN_MAX: usize = 16;
/// A log file, known by what rotation does not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The checkpoint: the chain of files read, oldest first, and where reading began in the first.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    pub chain: Vec<FileId>,
    pub first_from: u64,
    /// The position reached in the last file of the chain.
    pub offset: u64,
    pub last_event_id: String,
    pub saved_ms: i64,
}

impl Checkpoint {
    pub fn to_json(&self) -> Json {
        json!({
            "unithunt_watch_checkpoint": 1,
            "chain": self.chain.iter().map(|f| json!({"dev": f.dev, "ino": f.ino})).collect::<Vec<_>>(),
            "first_from": self.first_from,
            "offset": self.offset,
            "last_event_id": self.last_event_id,
            "saved_ms": self.saved_ms,
        })
    }

    pub fn from_json(j: &Json) -> Option<Checkpoint> {
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
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, String> {
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
pub struct Replay {
    pub path: PathBuf,
    pub id: FileId,
    pub from: u64,
    pub file: std::fs::File,
    pub is_log: bool,
}

/// The files to replay at restart: the checkpoint's chain still on disk (found by inode among
/// the log and its rotated siblings), then what was rotated since, then the log itself. Each with
/// the offset to start at. Bounded by [`REPLAY_LIMIT`].
pub fn replay_plan(log: &Path, cp: &Checkpoint) -> Vec<Replay> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::state::write_atomic;

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
}
