//! The alert journal: every alert raised, appended before any other sink sees it; the ids in it
//! make every sink idempotent.

use super::state::{kind_of, open_regular};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use unithunt_output::AlertSink;

/// The alert journal: every alert raised, NDJSON, and the ids in it (to raise none twice).
pub struct Journal {
    pub(crate) path: PathBuf,
    pub(crate) file: std::fs::File,
    pub(crate) size: u64,
    pub(crate) max: u64,
    /// Ids in the journal file and in its rotated predecessor (what rotates out is forgotten,
    /// so memory stays bounded by the journal's size).
    pub(crate) ids: HashSet<String>,
    pub(crate) previous_ids: HashSet<String>,
    /// A regular file (read back, rotated, shipped); otherwise a character device such as
    /// `/dev/null`, only written to.
    pub(crate) regular: bool,
    /// Alerts appended through [`AlertSink`].
    pub(crate) appended: u64,
}

impl Journal {
    /// Opened with `O_NONBLOCK` and looked at with fstat before anything is read: a regular file
    /// is read back (ids, torn line); a character device (`/dev/null`, `/dev/full`) is only
    /// written to, nothing is read from it; a FIFO, socket or directory is refused.
    pub fn open(path: &Path, max: u64) -> Result<Journal, String> {
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
                appended: 0,
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
            appended: 0,
        })
    }

    pub fn contains(&self, uuid: &str) -> bool {
        self.ids.contains(uuid) || self.previous_ids.contains(uuid)
    }

    /// Appends an alert; false when its id was raised before.
    pub fn append(&mut self, uuid: &str, line: &[u8]) -> std::io::Result<bool> {
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

    /// A regular file (which shippers can read), not a device such as `/dev/null`.
    pub fn is_regular(&self) -> bool {
        self.regular
    }

    /// Alerts appended since the journal was opened (an id seen before is not appended).
    pub fn appended(&self) -> u64 {
        self.appended
    }

    pub fn sync(&self) {
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

/// The journal as a sink: an alert is appended unless its id is there already (then it is not
/// counted); an alert without an id is refused.
impl AlertSink for Journal {
    fn alert(&mut self, alert: &Json) -> std::io::Result<()> {
        let uuid = alert["kibana.alert.uuid"].as_str().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "an alert without an id")
        })?;
        let line = unithunt_event::neutral::to_vec(alert).map_err(std::io::Error::other)?;
        if self.append(uuid, &line)? {
            self.appended += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<u64> {
        self.sync();
        Ok(self.appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
