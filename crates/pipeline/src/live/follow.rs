//! Following a log file as it grows, across rotation and truncation.

use super::checkpoint::FileId;
use super::state::open_regular;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this much of the log is read at a time (then signals are looked at, and the rest is
/// read without sleeping).
pub const READ_CHUNK: u64 = 8 << 20;
/// A line longer than this is dropped (counted as skipped, with a warning): auditd's records are
/// under 9 kB, and a file of zeros must not fill memory while no newline comes.
pub const MAX_LINE: usize = 16 << 20;
/// Reads whole lines appended to a file, following it across rotation (rename) and truncation.
/// Only a regular file is read (checked with fstat after an `O_NONBLOCK` open), at most
/// [`READ_CHUNK`] bytes a call, and a line longer than [`MAX_LINE`] is dropped.
pub struct Follower {
    pub(crate) path: PathBuf,
    pub(crate) file: Option<std::fs::File>,
    pub(crate) id: Option<FileId>,
    pub(crate) offset: u64,
    pub(crate) partial: Vec<u8>,
    /// The last read filled a chunk: more is there, read it without sleeping.
    pub(crate) more: bool,
    /// Dropping the rest of a line longer than [`MAX_LINE`].
    pub(crate) dropping: bool,
    /// Lines dropped for their length.
    pub(crate) oversized: u64,
    /// Why the file the name now leads to was not opened (a rotation to a FIFO or a device).
    pub(crate) problem: Option<String>,
}

impl Follower {
    /// Opens `path` at `offset` (or its end when `None`); not there: nothing open yet. An error
    /// when it is there but not a regular file, or cannot be opened.
    pub fn open(path: &Path, offset: Option<u64>) -> Result<Follower, String> {
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
    pub fn reopen(&mut self) {
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
    pub fn poll(&mut self) -> Polled {
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
    pub fn position(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }
}

pub enum Polled {
    /// Whole lines, and the offset of their first byte.
    Lines(Vec<u8>, u64),
    /// The last lines of a file rotated away; the follower now reads the new file.
    Rotated(Vec<u8>, u64),
}
