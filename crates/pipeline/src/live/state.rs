//! Small state files and the checks every file watch opens go through.

use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;
use unithunt_output::term::escape;

/// A checkpoint (or a sink's position file) larger than this is not one.
pub const STATE_MAX: u64 = 1 << 20;

/// Takes an exclusive lock on `PATH.lock` (created), held while the file returned is open: two
/// processes sharing a journal would ship and count each other's alerts. The error names the
/// path and says it is in use.
pub fn lock_beside(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::io::AsRawFd;
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    let lock = std::path::PathBuf::from(s);
    let shown = || escape(&lock.to_string_lossy());
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", shown()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| format!("{}: {e}", shown()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "{}: {} is in use by another process (each one needs its own)",
            shown(),
            escape(&path.to_string_lossy())
        ));
    }
    Ok(file)
}

/// What a file that is not a regular file is, for messages.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
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
pub fn open_regular(path: &Path) -> Result<Option<(std::fs::File, std::fs::Metadata)>, String> {
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
pub fn read_state(path: &Path) -> Result<Option<Vec<u8>>, String> {
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

pub fn now_ms() -> i64 {
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
