//! Paths inside a root (a mounted image, a triage collection, or `/`), resolved the way the kernel
//! would resolve them if that root were `/`, and never outside it.
//!
//! An image's absolute symbolic links (`/etc/systemd/system/x.service -> /usr/lib/...`) must land
//! in the image, not on the analyst's machine, and `..` cannot climb above the root: the same
//! rules as `openat2(RESOLVE_IN_ROOT)`, written with `lstat` and `readlink` so that they work on any
//! kernel and report what they met. Symbolic link loops end after [`MAX_LINKS`] links, as `ELOOP`.
//!
//! Every byte hunt reads from a root goes through [`Root::open_file`], [`Root::read_file`],
//! [`Root::list_dir`], [`Root::metadata`], [`Root::symlink_metadata`] or [`Root::read_link`]:
//! the path is resolved inside the root, then opened again without following any link (the
//! resolved path has none, so a link met now was swapped in since): the directory by
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` where the kernel has it, else by `openat` with
//! `O_NOFOLLOW` one component at a time from the root; the last component by `openat` with
//! `O_NOFOLLOW | O_NONBLOCK` in that directory. What was opened is checked with `fstat` (a
//! regular file, the inode that was checked before opening), and a swap seen on the way resolves
//! the path again, a few times at most. What is left: a directory of the root moved elsewhere
//! on the host while it is open (which takes write access outside the root).

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

/// Links followed while resolving one path before giving up (Linux's limit).
pub const MAX_LINKS: usize = 40;

/// The root everything is resolved in.
#[derive(Clone, Debug)]
pub struct Root {
    base: PathBuf,
    /// Open without `openat2`, one component at a time (as on kernels before 5.6).
    walk_only: bool,
}

/// A path resolved inside a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Where it is on this machine (under the root's base).
    pub host: PathBuf,
    /// The path as the image sees it (absolute, no links, no `.` or `..`).
    pub inside: String,
    /// Symbolic links followed on the way, as (link inside the root, its target as written).
    pub links: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// A component does not exist (the path up to it, inside the root).
    Missing(String),
    /// More than [`MAX_LINKS`] symbolic links: a loop.
    Loop(String),
    /// A component on the way is not a directory.
    NotADirectory(String),
    /// Reading the tree failed otherwise.
    Io(String, String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Missing(p) => write!(f, "{p}: does not exist"),
            ResolveError::Loop(p) => write!(f, "{p}: too many levels of symbolic links"),
            ResolveError::NotADirectory(p) => write!(f, "{p}: not a directory"),
            ResolveError::Io(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

/// Why a file of the root was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The path does not resolve inside the root.
    Resolve(ResolveError),
    /// Not a regular file (what it is: `a FIFO`, `a character device`...): never read, as
    /// reading a FIFO blocks and a device may never end.
    NotRegular {
        path: String,
        kind: &'static str,
    },
    /// Longer than the limit for what it is.
    TooLarge {
        path: String,
        cap: u64,
    },
    /// A directory with more entries than [`MAX_DIR_ENTRIES`].
    TooManyEntries {
        path: String,
        cap: usize,
    },
    /// Swapped (for a link, or another file) every time it was opened.
    Changed(String),
    Io(String, String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Resolve(e) => write!(f, "{e}"),
            Refused::NotRegular { path, kind } => {
                write!(f, "{path}: {kind}, not a regular file; not read")
            }
            Refused::TooLarge { path, cap } => {
                write!(f, "{path}: over the {cap}-byte limit; not read")
            }
            Refused::TooManyEntries { path, cap } => {
                write!(f, "{path}: more than {cap} entries; not read")
            }
            Refused::Changed(p) => write!(
                f,
                "{p}: changed while being opened (a symbolic link or another file swapped in); not read"
            ),
            Refused::Io(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

impl Refused {
    /// True when the path is not there (which most readers take as "none", not as a problem).
    pub fn is_missing(&self) -> bool {
        matches!(self, Refused::Resolve(ResolveError::Missing(_)))
    }

    /// The reason, naming `path` first when the reason names another path (where a link led).
    pub fn about(&self, path: &str) -> String {
        let text = self.to_string();
        if text.starts_with(path) {
            text
        } else {
            format!("{path}: {text}")
        }
    }
}

/// Entries of one directory read at most (a unit directory holds hundreds, dpkg's `info` tens of
/// thousands).
pub const MAX_DIR_ENTRIES: usize = 1 << 20;

/// Times a path is resolved and opened again when it changed in between.
const OPEN_ATTEMPTS: usize = 4;

/// Whether `openat2` works here: unknown, yes, no (`ENOSYS` before Linux 5.6, `EPERM` under a
/// seccomp filter that does not know it).
static OPENAT2: AtomicU8 = AtomicU8::new(0);
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;

/// The file type bits of `st_mode`, and two of their values.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// What a file type is, in words.
fn kind_of(mode: u32) -> &'static str {
    match mode & S_IFMT {
        0o010000 => "a FIFO",
        0o020000 => "a character device",
        0o040000 => "a directory",
        0o060000 => "a block device",
        S_IFLNK => "a symbolic link",
        0o140000 => "a socket",
        _ => "not a regular file",
    }
}

/// An error that means the tree changed between resolving and opening: resolve again.
fn swapped(e: &rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(*e, Errno::LOOP | Errno::NOTDIR | Errno::NOENT | Errno::XDEV)
}

/// The directory and last component of a resolved path (`/` is `.` in itself).
fn split_last(inside: &str) -> (&str, &str) {
    match inside.rsplit_once('/') {
        Some((_, "")) | None => ("/", "."),
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
    }
}

/// An open regular file of the root.
#[derive(Debug)]
pub struct OpenFile {
    pub file: File,
    /// Its path inside the root, links resolved.
    pub inside: String,
    /// Its metadata, from the open file.
    pub meta: Metadata,
}

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root {
            base: base.into(),
            walk_only: false,
        }
    }

    /// The same root, opened without `openat2` (one component at a time, as on kernels that
    /// lack it); both ways give the same answers.
    pub fn without_openat2(mut self) -> Root {
        self.walk_only = true;
        self
    }

    /// Opens the directory `dir` (resolved: absolute, without links) following no link at all.
    fn open_dir_nofollow(&self, dir: &str) -> rustix::io::Result<OwnedFd> {
        let base = rustix::fs::openat(
            rustix::fs::CWD,
            &self.base,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let rel = dir.trim_start_matches('/');
        if rel.is_empty() {
            return Ok(base);
        }
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if !self.walk_only && OPENAT2.load(Ordering::Relaxed) != OPENAT2_NO {
            use rustix::io::Errno;
            match rustix::fs::openat2(
                &base,
                rel,
                dir_flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG) => {
                    OPENAT2.store(OPENAT2_NO, Ordering::Relaxed);
                }
                r => {
                    OPENAT2.store(OPENAT2_YES, Ordering::Relaxed);
                    return r;
                }
            }
        }
        let mut cur = base;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            cur = rustix::fs::openat(&cur, c, dir_flags, Mode::empty())?;
        }
        Ok(cur)
    }

    /// Resolves `path` and runs `op` on the directory holding what it names (opened without
    /// following any link) and its last component's name; when the tree changed in between
    /// (`op` or the directory says so), resolves again, [`OPEN_ATTEMPTS`] times at most.
    fn in_root<T>(
        &self,
        path: &str,
        follow_last: bool,
        op: impl Fn(&Resolved, &OwnedFd, &str) -> Result<T, Refused>,
    ) -> Result<T, Refused> {
        for _ in 0..OPEN_ATTEMPTS {
            let r = self.walk(path, follow_last).map_err(Refused::Resolve)?;
            let (dir, name) = split_last(&r.inside);
            let dirfd = match self.open_dir_nofollow(dir) {
                Ok(fd) => fd,
                Err(e) if swapped(&e) => continue,
                Err(e) => return Err(Refused::Io(r.inside.clone(), e.to_string())),
            };
            match op(&r, &dirfd, name) {
                Err(Refused::Changed(_)) => continue,
                done => return done,
            }
        }
        Err(Refused::Changed(path.to_string()))
    }

    /// Opens the regular file `path` names inside the root (links followed inside it). A FIFO,
    /// device, socket or directory is refused without being opened; what was opened is checked
    /// to be the regular file that was checked.
    pub fn open_file(&self, path: &str) -> Result<OpenFile, Refused> {
        self.in_root(path, true, |r, dir, name| {
            let inside = &r.inside;
            let io = |e: rustix::io::Errno| {
                if swapped(&e) {
                    Refused::Changed(inside.clone())
                } else {
                    Refused::Io(inside.clone(), std::io::Error::from(e).to_string())
                }
            };
            let before = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
            if before.st_mode & S_IFMT != S_IFREG {
                if before.st_mode & S_IFMT == S_IFLNK {
                    return Err(Refused::Changed(inside.clone()));
                }
                return Err(Refused::NotRegular {
                    path: inside.clone(),
                    kind: kind_of(before.st_mode),
                });
            }
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            let file = File::from(fd);
            let meta = file
                .metadata()
                .map_err(|e| Refused::Io(inside.clone(), e.to_string()))?;
            if meta.dev() != before.st_dev || meta.ino() != before.st_ino {
                return Err(Refused::Changed(inside.clone()));
            }
            if !meta.is_file() {
                return Err(Refused::NotRegular {
                    path: inside.clone(),
                    kind: kind_of(meta.mode()),
                });
            }
            Ok(OpenFile {
                file,
                inside: inside.clone(),
                meta,
            })
        })
    }

    /// The bytes of the regular file `path` names inside the root, at most `cap` of them
    /// (a longer file, or one that grows past it while read, is refused whatever its size said).
    pub fn read_file(&self, path: &str, cap: u64) -> Result<Vec<u8>, Refused> {
        let open = self.open_file(path)?;
        let too_large = || Refused::TooLarge {
            path: open.inside.clone(),
            cap,
        };
        if open.meta.len() > cap {
            return Err(too_large());
        }
        let mut out = Vec::with_capacity(open.meta.len() as usize);
        (&open.file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| Refused::Io(open.inside.clone(), e.to_string()))?;
        if out.len() as u64 > cap {
            return Err(too_large());
        }
        Ok(out)
    }

    /// The metadata of what `path` names (links followed inside the root), whatever it is;
    /// nothing is opened for reading (`O_PATH`).
    pub fn metadata(&self, path: &str) -> Result<Metadata, Refused> {
        self.stat(path, true)
    }

    /// The metadata of `path` itself (a link in its last component is not followed).
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, Refused> {
        self.stat(path, false)
    }

    fn stat(&self, path: &str, follow_last: bool) -> Result<Metadata, Refused> {
        self.in_root(path, follow_last, |r, dir, name| {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                if swapped(&e) {
                    Refused::Changed(r.inside.clone())
                } else {
                    Refused::Io(r.inside.clone(), std::io::Error::from(e).to_string())
                }
            })?;
            let meta = File::from(fd)
                .metadata()
                .map_err(|e| Refused::Io(r.inside.clone(), e.to_string()))?;
            if follow_last && meta.file_type().is_symlink() {
                return Err(Refused::Changed(r.inside.clone()));
            }
            Ok(meta)
        })
    }

    /// The target of the symbolic link `path` (its directory resolved inside the root), as
    /// written.
    pub fn read_link(&self, path: &str) -> Result<String, Refused> {
        self.in_root(path, false, |r, dir, name| {
            rustix::fs::readlinkat(dir, name, Vec::new())
                .map(|t| t.to_string_lossy().into_owned())
                .map_err(|e| Refused::Io(r.inside.clone(), std::io::Error::from(e).to_string()))
        })
    }

    /// When `path` itself is a symbolic link whose target is not in the root (dangling, or
    /// written for another machine: `/tmp/x` is the root's `/tmp/x`, never the host's), what to
    /// tell the user; `None` when `path` is no link, or one that resolves.
    pub fn dangling_link(&self, path: &str) -> Option<String> {
        if !self.symlink_metadata(path).ok()?.file_type().is_symlink() {
            return None;
        }
        let target = self.read_link(path).unwrap_or_default();
        let e = self.resolve(path).err()?;
        Some(format!(
            "{path}: a symbolic link to {target}, which does not resolve inside the root ({e}); \
             not read"
        ))
    }

    /// The sorted entry names (UTF-8 ones) of the directory `path` names inside the root.
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, Refused> {
        self.in_root(path, true, |r, dir, name| {
            let inside = &r.inside;
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                rustix::io::Errno::NOTDIR => {
                    Refused::Resolve(ResolveError::NotADirectory(inside.clone()))
                }
                e if swapped(&e) => Refused::Changed(inside.clone()),
                e => Refused::Io(inside.clone(), std::io::Error::from(e).to_string()),
            })?;
            let io = |e: rustix::io::Errno| {
                Refused::Io(inside.clone(), std::io::Error::from(e).to_string())
            };
            let mut names = Vec::new();
            let mut entries = rustix::fs::Dir::read_from(fd.as_fd()).map_err(io)?;
            while let Some(entry) = entries.read() {
                let entry = entry.map_err(io)?;
                let Ok(name) = entry.file_name().to_str() else {
                    continue;
                };
                if name == "." || name == ".." {
                    continue;
                }
                if names.len() >= MAX_DIR_ENTRIES {
                    return Err(Refused::TooManyEntries {
                        path: inside.clone(),
                        cap: MAX_DIR_ENTRIES,
                    });
                }
                names.push(name.to_string());
            }
            names.sort();
            Ok(names)
        })
    }

    /// The host path of `inside` without following anything (for listing a directory's entries).
    pub fn host_path(&self, inside: &str) -> PathBuf {
        let mut p = self.base.clone();
        for c in inside.split('/').filter(|c| !c.is_empty() && *c != ".") {
            p.push(c);
        }
        p
    }

    /// Resolves `path` (absolute inside the root; a relative path is taken from the root)
    /// following every symbolic link, the last component's too.
    pub fn resolve(&self, path: &str) -> Result<Resolved, ResolveError> {
        self.walk(path, true)
    }

    /// Like [`Root::resolve`], but a symbolic link in the last component is not followed (to
    /// read the link itself: a masked unit is a link to `/dev/null`).
    pub fn resolve_parent(&self, path: &str) -> Result<Resolved, ResolveError> {
        self.walk(path, false)
    }

    fn walk(&self, path: &str, follow_last: bool) -> Result<Resolved, ResolveError> {
        let mut done: Vec<String> = Vec::new();
        // Components still to walk, last first (so links can push theirs in front).
        let mut todo: Vec<String> = split_rev(path);
        let mut links = Vec::new();
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    // Above the root is the root.
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let inside = format!("/{}", done.join("/"));
            let host = self.host_path(&inside);
            let meta = match std::fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ResolveError::Missing(inside))
                }
                Err(e) if e.raw_os_error() == Some(20) => {
                    return Err(ResolveError::NotADirectory(inside))
                }
                Err(e) => return Err(ResolveError::Io(inside, e.to_string())),
            };
            let last = todo.is_empty();
            if meta.file_type().is_symlink() && (follow_last || !last) {
                if links.len() >= MAX_LINKS {
                    return Err(ResolveError::Loop(path.to_string()));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| ResolveError::Io(inside.clone(), e.to_string()))?;
                let target = target.to_string_lossy().into_owned();
                links.push((inside, target.clone()));
                done.pop();
                if target.starts_with('/') {
                    // Absolute: from the root again.
                    done.clear();
                }
                todo.extend(split_rev(&target));
                continue;
            }
            if !last && !meta.is_dir() {
                return Err(ResolveError::NotADirectory(inside));
            }
        }
        let inside = format!("/{}", done.join("/"));
        Ok(Resolved {
            host: self.host_path(&inside),
            inside,
            links,
        })
    }
}

/// Path components, last first.
fn split_rev(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect()
}

/// The unit search path of the system manager, highest priority first (systemd.unit(5));
/// `/lib/systemd/system` is added for systems that did not merge `/usr` (a merged system resolves
/// it to `/usr/lib/systemd/system`, and the duplicate is skipped by its resolved path).
pub const SYSTEM_UNIT_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// The unit search path of one user's manager, highest priority first (systemd.unit(5)), with
/// the XDG defaults (`$XDG_CONFIG_DIRS=/etc/xdg`, `$XDG_DATA_DIRS=/usr/local/share:/usr/share`) and
/// `$XDG_RUNTIME_DIR=/run/user/<uid>`.
pub fn user_unit_path(home: &str, uid: u32) -> Vec<String> {
    let run = format!("/run/user/{uid}/systemd");
    vec![
        format!("{home}/.config/systemd/user.control"),
        format!("{run}/user.control"),
        format!("{run}/transient"),
        format!("{run}/generator.early"),
        format!("{home}/.config/systemd/user"),
        "/etc/xdg/systemd/user".into(),
        "/etc/systemd/user".into(),
        format!("{run}/user"),
        "/run/systemd/user".into(),
        format!("{run}/generator"),
        format!("{home}/.local/share/systemd/user"),
        "/usr/local/share/systemd/user".into(),
        "/usr/share/systemd/user".into(),
        "/usr/local/lib/systemd/user".into(),
        "/usr/lib/systemd/user".into(),
        format!("{run}/generator.late"),
    ]
}

/// Directories of generators and environment generators (systemd.generator(7),
/// systemd.environment-generator(7)), system and user.
pub fn generator_dirs() -> Vec<String> {
    let mut out = Vec::new();
    for kind in [
        "system-generators",
        "user-generators",
        "system-environment-generators",
        "user-environment-generators",
    ] {
        for base in [
            "/run/systemd",
            "/etc/systemd",
            "/usr/local/lib/systemd",
            "/usr/lib/systemd",
            "/lib/systemd",
        ] {
            out.push(format!("{base}/{kind}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testtree::Tree;
    use std::path::Path;

    #[test]
    fn absolute_links_land_in_the_root_and_dotdot_stops_at_it() {
        let t = Tree::new("root-abs");
        t.file("/usr/lib/systemd/system/cron.service", "[Service]\n");
        // An image with merged /usr: /lib -> usr/lib, and an absolute alias.
        t.link("/lib", "usr/lib");
        t.link(
            "/etc/systemd/system/crond.service",
            "/lib/systemd/system/cron.service",
        );
        t.link(
            "/etc/systemd/system/escape.service",
            "../../../../../../etc/passwd",
        );
        let root = Root::new(&t.0);
        let r = root.resolve("/etc/systemd/system/crond.service").unwrap();
        assert_eq!(r.inside, "/usr/lib/systemd/system/cron.service");
        assert!(r.host.starts_with(&t.0));
        assert_eq!(r.links.len(), 2, "{:?}", r.links);
        // `..` past the root stays in it: this is the image's /etc/passwd, which it lacks.
        assert_eq!(
            root.resolve("/etc/systemd/system/escape.service"),
            Err(ResolveError::Missing("/etc/passwd".into()))
        );
        assert_eq!(
            root.resolve("/../../usr/lib/systemd").unwrap().inside,
            "/usr/lib/systemd"
        );
    }

    #[test]
    fn loops_missing_parts_and_the_link_itself() {
        let t = Tree::new("root-loop");
        t.link("/etc/systemd/system/a.service", "b.service");
        t.link(
            "/etc/systemd/system/b.service",
            "/etc/systemd/system/a.service",
        );
        t.link("/etc/systemd/system/masked.service", "/dev/null");
        t.file("/etc/systemd/system/plain.service", "");
        let root = Root::new(&t.0);
        assert!(matches!(
            root.resolve("/etc/systemd/system/a.service"),
            Err(ResolveError::Loop(_))
        ));
        // A masked unit: its link is read without following it (the image has no /dev/null).
        let masked = root
            .resolve_parent("/etc/systemd/system/masked.service")
            .unwrap();
        assert!(masked.links.is_empty());
        assert_eq!(
            std::fs::read_link(&masked.host).unwrap(),
            Path::new("/dev/null")
        );
        assert_eq!(
            root.resolve("/etc/systemd/system/plain.service/x"),
            Err(ResolveError::NotADirectory(
                "/etc/systemd/system/plain.service".into()
            ))
        );
        assert!(matches!(root.resolve("/nope/x"), Err(ResolveError::Missing(p)) if p == "/nope"));
    }

    /// A root and the same root opened without `openat2`: every test of the helpers runs on both.
    fn both_ways(base: &Path) -> [Root; 2] {
        [Root::new(base), Root::new(base).without_openat2()]
    }

    /// A file outside the tree (on "the host"), holding a marker no file inside it holds.
    fn host_file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("unithunt-host-{name}-{}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn mkfifo(p: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            c.as_c_str(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }

    #[test]
    fn the_open_helpers_read_only_regular_files_inside_the_root() {
        let t = Tree::new("root-open");
        let host = host_file("open", "HOST-MARKER\n");
        t.file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        t.file("/usr/lib/x.service", "[Service]\n");
        t.link("/etc/systemd/system/x.service", "/usr/lib/x.service");
        t.link("/etc/systemd/system/host.service", host.to_str().unwrap());
        t.link("/etc/systemd/system/zero.service", "/dev/zero");
        mkfifo(&t.0.join("etc/systemd/system/fifo.service"));
        for root in both_ways(&t.0) {
            assert_eq!(
                root.read_file("/etc/systemd/system/x.service", 100)
                    .unwrap(),
                b"[Service]\n"
            );
            // An absolute link to a host file is the image's file of that name: missing here.
            assert!(root
                .read_file("/etc/systemd/system/host.service", 100)
                .unwrap_err()
                .is_missing());
            assert!(root
                .read_file("/etc/systemd/system/zero.service", 100)
                .unwrap_err()
                .is_missing());
            assert_eq!(
                root.read_file("/etc/systemd/system/fifo.service", 100)
                    .unwrap_err(),
                Refused::NotRegular {
                    path: "/etc/systemd/system/fifo.service".into(),
                    kind: "a FIFO"
                }
            );
            assert_eq!(
                root.read_file("/etc/systemd", 100).unwrap_err().to_string(),
                "/etc/systemd: a directory, not a regular file; not read"
            );
            assert_eq!(
                root.read_file("/etc/passwd", 5).unwrap_err().to_string(),
                "/etc/passwd: over the 5-byte limit; not read"
            );
            assert_eq!(
                root.list_dir("/etc/systemd/system").unwrap(),
                ["fifo.service", "host.service", "x.service", "zero.service"]
            );
            assert!(root
                .metadata("/etc/systemd/system/x.service")
                .unwrap()
                .is_file());
            assert!(root
                .symlink_metadata("/etc/systemd/system/x.service")
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(
                root.read_link("/etc/systemd/system/zero.service").unwrap(),
                "/dev/zero"
            );
            assert!(root.list_dir("/etc/passwd").is_err());
            assert!(root.list_dir("/").unwrap().contains(&"etc".to_string()));
            // A link whose target is not in the root is named, with where it points.
            let note = root
                .dangling_link("/etc/systemd/system/host.service")
                .unwrap();
            assert!(
                note.starts_with(&format!(
                    "/etc/systemd/system/host.service: a symbolic link to {}, which does not \
                     resolve inside the root (",
                    host.display()
                )),
                "{note}"
            );
            assert_eq!(root.dangling_link("/etc/systemd/system/x.service"), None);
            assert_eq!(root.dangling_link("/etc/passwd"), None);
            assert_eq!(root.dangling_link("/nope"), None);
            let e = root
                .read_file("/etc/systemd/system/zero.service", 100)
                .unwrap_err();
            assert_eq!(
                e.about("/etc/systemd/system/zero.service"),
                "/etc/systemd/system/zero.service: /dev: does not exist"
            );
        }
        let _ = std::fs::remove_file(host);
    }

    /// Issue 15 item 4: a unit swapped between a regular file and a link to a host file while it
    /// is read leaked the host file (the link was followed by the open after the check). Opened
    /// without following links and checked after opening, the host's bytes never come back.
    #[test]
    fn a_file_swapped_for_a_link_to_the_host_never_reads_the_host() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let t = Tree::new("root-swap");
        let host = host_file("swap", "HOST-MARKER\n");
        t.file("/etc/systemd/system/unit.service", "[Service]\n");
        let dir = t.0.join("etc/systemd/system");
        // Another directory to swap for the unit's, by a link to the host's temp directory.
        for root in both_ways(&t.0) {
            let stop = Arc::new(AtomicBool::new(false));
            let swapper = {
                let (stop, dir, host) = (Arc::clone(&stop), dir.clone(), host.clone());
                std::thread::spawn(move || {
                    let mut swaps = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = std::os::unix::fs::symlink(&host, dir.join("link.tmp"));
                        let _ = std::fs::rename(dir.join("link.tmp"), dir.join("unit.service"));
                        let _ = std::fs::write(dir.join("file.tmp"), "[Service]\n");
                        let _ = std::fs::rename(dir.join("file.tmp"), dir.join("unit.service"));
                        swaps += 1;
                    }
                    swaps
                })
            };
            let (mut read, mut refused) = (0u32, 0u32);
            for _ in 0..20_000 {
                match root.read_file("/etc/systemd/system/unit.service", 1 << 10) {
                    Ok(bytes) => {
                        assert!(
                            !String::from_utf8_lossy(&bytes).contains("HOST-MARKER"),
                            "the host file was read through the root"
                        );
                        read += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            stop.store(true, Ordering::Relaxed);
            let swaps = swapper.join().unwrap();
            assert!(
                swaps > 0 && read > 0,
                "{swaps} swaps, {read} read, {refused} refused"
            );
        }
        let _ = std::fs::remove_file(host);
    }

    #[test]
    fn search_paths_follow_systemd_unit_5() {
        assert_eq!(SYSTEM_UNIT_PATH[0], "/etc/systemd/system.control");
        assert_eq!(
            SYSTEM_UNIT_PATH.last(),
            Some(&"/run/systemd/generator.late")
        );
        let user = user_unit_path("/home/eve", 1001);
        assert_eq!(user[4], "/home/eve/.config/systemd/user");
        assert_eq!(user[10], "/home/eve/.local/share/systemd/user");
        assert!(user.contains(&"/etc/systemd/user".to_string()));
        assert_eq!(
            user.last().unwrap(),
            "/run/user/1001/systemd/generator.late"
        );
        let gens = generator_dirs();
        assert!(gens.contains(&"/usr/local/lib/systemd/system-generators".to_string()));
        assert!(gens.contains(&"/etc/systemd/user-environment-generators".to_string()));
        assert_eq!(gens.len(), 20);
    }
}
