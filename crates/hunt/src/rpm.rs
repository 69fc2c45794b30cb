//! Which RPM package owns a file, and whether the file is as the package shipped it, read offline
//! from the RPM database of a root (never by running `rpm`: the root may be an image).
//!
//! Since RPM 4.16 (Fedora 33, RHEL 9, openSUSE) the database is SQLite: `rpmdb.sqlite` in
//! `/usr/lib/sysimage/rpm` or `/var/lib/rpm`, table `Packages(hnum, blob)`, one package header per
//! row. A header blob is RPM's header structure without its magic: the count of index entries and
//! the size of the data store (both 32-bit big-endian), the entries (tag, type, offset, count:
//! 16 bytes each), then the data store. The tags read here: NAME (1000), FILEDIGESTS (1035, hex),
//! DIRINDEXES (1116), BASENAMES (1117), DIRNAMES (1118) and FILEDIGESTALGO (5011; MD5 when absent).
//! Reading SQLite is rusqlite's job; the header format has no maintained crate that reads it
//! without pulling in librpm, so it is parsed here, every offset checked (an image is hostile).
//! Before RPM 4.16 (RHEL/CentOS 7 and 8) the same headers are the values of a Berkeley DB hash
//! database, `/var/lib/rpm/Packages`, read by [`crate::bdb`].

use crate::dpkg::{file_digest, Ownership};
use crate::root::{Refused, Root};
use std::collections::HashMap;

/// Where RPM keeps its SQLite database, newest layout first.
const SQLITE_PATHS: &[&str] = &[
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite",
];
/// The Berkeley DB format (RHEL/CentOS 7 and 8, Amazon Linux 2, SLES 12 and 15).
const BDB_PATH: &str = "/var/lib/rpm/Packages";
/// ndb (openSUSE and SLES from 2021 until SQLite): reported, not read.
const NDB_PATHS: &[&str] = &[
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages.db",
];
/// A Berkeley DB `Packages` file larger than this is not read (the largest real ones are a few
/// hundred MB); it is read into memory whole.
pub const MAX_BDB_BYTES: u64 = 1 << 30;
/// An SQLite database (or its write-ahead log) larger than this is not read; both are copied
/// into a private directory before SQLite opens them.
pub const MAX_SQLITE_BYTES: u64 = 1 << 30;
/// One value SQLite may produce (`SQLITE_LIMIT_LENGTH`): a package header (the largest real
/// ones, of TeX and kernel source packages, are a few MB).
pub const MAX_HEADER_BYTES: u64 = 64 << 20;
/// `Packages` rows read at most (a full distribution is about 60,000 packages).
pub const MAX_PACKAGES: usize = 1 << 20;
/// Header bytes read at most over one database.
pub const MAX_HEADER_TOTAL_BYTES: u64 = 2 << 30;
/// SQLite virtual machine steps one database may take (a table scan of a real database takes a
/// few million).
pub const MAX_SQLITE_STEPS: u64 = 1 << 30;
/// Strings or numbers of one tag of one header read at most.
pub const MAX_TAG_VALUES: usize = 1 << 20;
/// Files read at most over one database (a full distribution has about two million).
pub const MAX_FILES: usize = 8 << 20;
/// Bytes of file paths (each directory name joined to a base name) over one database.
pub const MAX_PATH_BYTES: u64 = 1 << 30;

const TAG_NAME: i32 = 1000;
const TAG_FILEDIGESTS: i32 = 1035;
const TAG_DIRINDEXES: i32 = 1116;
const TAG_BASENAMES: i32 = 1117;
const TAG_DIRNAMES: i32 = 1118;
const TAG_FILEDIGESTALGO: i32 = 5011;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// A digest algorithm of RPM (`pgpHashAlgo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgo {
    Md5,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgo {
    fn from_rpm(n: u32) -> Option<DigestAlgo> {
        Some(match n {
            1 => DigestAlgo::Md5,
            8 => DigestAlgo::Sha256,
            9 => DigestAlgo::Sha384,
            10 => DigestAlgo::Sha512,
            // SHA-1 (2) and SHA-224 (11): never used for file digests by any RPM distribution.
            _ => return None,
        })
    }
}

/// One package header: its name and files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    /// Absolute paths with their hex digest (empty for directories, links, ghosts).
    pub files: Vec<(String, String)>,
    /// `None` when the package names an algorithm this reader does not know.
    pub algo: Option<DigestAlgo>,
}

/// One index entry of a header.
struct IndexEntry {
    tag: i32,
    kind: u32,
    offset: usize,
    count: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What the headers of one database may still produce: files and bytes of paths. The join of
/// directory names and base names multiplies (a million base names each in a 100 kB directory
/// name are 100 GB from a 5 MB header): it is counted before anything is built.
#[derive(Clone, Debug)]
pub struct HeaderBudget {
    pub files: usize,
    pub path_bytes: u64,
    /// Set when the budget ran out (why, naming the limit): the database is not used.
    pub exhausted: Option<String>,
}

impl Default for HeaderBudget {
    fn default() -> HeaderBudget {
        HeaderBudget {
            files: MAX_FILES,
            path_bytes: MAX_PATH_BYTES,
            exhausted: None,
        }
    }
}

/// Parses a header blob as the database stores it, with a budget of its own.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    parse_header_within(blob, &mut HeaderBudget::default())
}

/// Parses a header blob, counting its files and path bytes against `budget`; when that runs out
/// the header is an error and `budget.exhausted` says why.
pub fn parse_header_within(blob: &[u8], budget: &mut HeaderBudget) -> Result<Header, String> {
    let il = be32(blob, 0).ok_or("header shorter than 8 bytes")? as usize;
    let dl = be32(blob, 4).ok_or("header shorter than 8 bytes")? as usize;
    let entries_end = il
        .checked_mul(16)
        .and_then(|n| n.checked_add(8))
        .filter(|&n| n <= blob.len())
        .ok_or_else(|| format!("{il} index entries do not fit in {} bytes", blob.len()))?;
    let data = blob
        .get(entries_end..entries_end.checked_add(dl).ok_or("data size overflows")?)
        .ok_or_else(|| format!("a data store of {dl} bytes does not fit"))?;
    let mut entries = Vec::with_capacity(il.min(4096));
    for i in 0..il {
        let at = 8 + i * 16;
        entries.push(IndexEntry {
            tag: be32(blob, at).ok_or("truncated entry")? as i32,
            kind: be32(blob, at + 4).ok_or("truncated entry")?,
            offset: be32(blob, at + 8).ok_or("truncated entry")? as usize,
            count: be32(blob, at + 12).ok_or("truncated entry")? as usize,
        });
    }
    let find = |tag: i32| entries.iter().find(|e| e.tag == tag);
    let strings = |tag: i32| -> Result<Vec<String>, String> {
        let Some(e) = find(tag) else {
            return Ok(Vec::new());
        };
        if !matches!(e.kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(format!("tag {tag} is not a string (type {})", e.kind));
        }
        if e.count > MAX_TAG_VALUES {
            return Err(format!(
                "tag {tag}: {} values, over the limit of {MAX_TAG_VALUES}",
                e.count
            ));
        }
        let mut out = Vec::with_capacity(e.count.min(1 << 16));
        let mut at = e.offset;
        for _ in 0..e.count {
            let rest = data
                .get(at..)
                .ok_or_else(|| format!("tag {tag}: offset {at} past the data store"))?;
            let len = memchr_nul(rest).ok_or_else(|| format!("tag {tag}: unterminated string"))?;
            out.push(String::from_utf8_lossy(&rest[..len]).into_owned());
            at += len + 1;
        }
        Ok(out)
    };
    let ints = |tag: i32| -> Result<Vec<u32>, String> {
        let Some(e) = find(tag) else {
            return Ok(Vec::new());
        };
        if e.kind != TYPE_INT32 {
            return Err(format!("tag {tag} is not INT32 (type {})", e.kind));
        }
        if e.count > MAX_TAG_VALUES {
            return Err(format!(
                "tag {tag}: {} values, over the limit of {MAX_TAG_VALUES}",
                e.count
            ));
        }
        (0..e.count)
            .map(|i| {
                e.offset
                    .checked_add(i * 4)
                    .and_then(|at| be32(data, at))
                    .ok_or_else(|| format!("tag {tag}: value {i} past the data store"))
            })
            .collect()
    };
    let name = strings(TAG_NAME)?.into_iter().next().unwrap_or_default();
    let basenames = strings(TAG_BASENAMES)?;
    let dirnames = strings(TAG_DIRNAMES)?;
    let dirindexes = ints(TAG_DIRINDEXES)?;
    let digests = strings(TAG_FILEDIGESTS)?;
    if dirindexes.len() != basenames.len() {
        return Err(format!(
            "{name}: {} base names but {} directory indexes",
            basenames.len(),
            dirindexes.len()
        ));
    }
    let algo = match ints(TAG_FILEDIGESTALGO)?.first() {
        None => Some(DigestAlgo::Md5),
        Some(&n) => DigestAlgo::from_rpm(n),
    };
    // The size of the join, counted before any path is built.
    let mut path_bytes = 0u64;
    for (i, base) in basenames.iter().enumerate() {
        let dir = dirnames
            .get(dirindexes[i] as usize)
            .ok_or_else(|| format!("{name}: directory index {} out of range", dirindexes[i]))?;
        path_bytes += (dir.len() + base.len()) as u64;
    }
    if basenames.len() > budget.files || path_bytes > budget.path_bytes {
        let why = format!(
            "over the budget of {MAX_FILES} files or {MAX_PATH_BYTES} bytes of file paths \
             (package {name}: {} files, {path_bytes} bytes of paths)",
            basenames.len()
        );
        budget.exhausted = Some(why.clone());
        return Err(why);
    }
    budget.files -= basenames.len();
    budget.path_bytes -= path_bytes;
    let files = basenames
        .iter()
        .zip(&dirindexes)
        .enumerate()
        .map(|(i, (base, &d))| {
            (
                format!("{}{base}", dirnames[d as usize]),
                digests.get(i).cloned().unwrap_or_default(),
            )
        })
        .collect();
    Ok(Header { name, files, algo })
}

fn memchr_nul(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == 0)
}

#[derive(Debug, Default)]
struct RpmFile {
    packages: Vec<String>,
    /// (algorithm, hex digest) of the first package that recorded one.
    digest: Option<(DigestAlgo, String)>,
}

/// The RPM database of one root.
#[derive(Debug, Default)]
pub struct Rpm {
    files: HashMap<String, RpmFile>,
    /// Where the database was found (empty: none).
    pub found: String,
    /// A database was found but refused as a whole (over a limit): RPM files show as unowned.
    pub refused: bool,
    /// What could not be read, with why.
    pub problems: Vec<String>,
}

impl Rpm {
    /// Reads the database under `root`; a root without one is an empty database. Every file is
    /// read through [`Root::open_file`]; a database over a limit is not used at all, with a
    /// problem that names it and the limit.
    pub fn load(root: &Root) -> Rpm {
        let mut db = Rpm::default();
        for path in SQLITE_PATHS {
            match root.metadata(path) {
                Err(e) if e.is_missing() => {
                    db.problems.extend(root.dangling_link(path));
                    continue;
                }
                _ => {}
            }
            match read_sqlite(root, path) {
                Ok((blobs, notes)) => {
                    db.problems
                        .extend(notes.into_iter().map(|n| format!("{path}: {n}")));
                    db.add_headers(path, blobs);
                }
                Err(e) => db.refuse(path, &e),
            }
            break;
        }
        if db.found.is_empty() && !db.refused {
            match root.read_file(BDB_PATH, MAX_BDB_BYTES) {
                Err(e) if e.is_missing() => {}
                Err(e) => db.refuse(BDB_PATH, &e.to_string()),
                Ok(bytes) => match crate::bdb::hash_values(&bytes) {
                    Ok((blobs, problems)) => {
                        db.problems
                            .extend(problems.into_iter().map(|p| format!("{BDB_PATH}: {p}")));
                        // The record under key 0 is RPM's next-instance counter (4 bytes).
                        let blobs = blobs
                            .into_iter()
                            .filter(|b| b.len() > 8)
                            .enumerate()
                            .map(|(i, b)| (i as i64 + 1, b))
                            .collect();
                        db.add_headers(BDB_PATH, blobs);
                    }
                    Err(e) => db.problems.push(format!("{BDB_PATH}: {e}")),
                },
            }
        }
        if db.found.is_empty() && !db.refused {
            for path in NDB_PATHS {
                if root.symlink_metadata(path).is_ok() {
                    db.problems.push(format!(
                        "{path}: an RPM database in the ndb format, which this version does not read: \
                         RPM-installed files show as unowned"
                    ));
                }
            }
        }
        db
    }

    /// The packages of the database at `path`, all within one [`HeaderBudget`]; when it runs out
    /// the whole database is refused (a part of it would call files unowned at random).
    fn add_headers(&mut self, path: &str, blobs: Vec<(i64, Vec<u8>)>) {
        let mut budget = HeaderBudget::default();
        let mut headers = Vec::new();
        for (hnum, blob) in blobs {
            match parse_header_within(&blob, &mut budget) {
                Ok(h) => headers.push(h),
                Err(e) => {
                    if let Some(why) = budget.exhausted.take() {
                        self.refuse(path, &why);
                        return;
                    }
                    self.problems.push(format!("{path}: package {hnum}: {e}"));
                }
            }
        }
        self.found = path.to_string();
        for h in headers {
            self.add(h);
        }
    }

    /// Gives up the database at `path`, saying why.
    fn refuse(&mut self, path: &str, why: &str) {
        // A reason of the file itself names it already.
        let why = why
            .strip_prefix(path)
            .and_then(|w| w.strip_prefix(": "))
            .unwrap_or(why);
        self.files.clear();
        self.found.clear();
        self.refused = true;
        self.problems.push(format!(
            "{path}: {why}; this RPM database is not used (files it lists show as unowned, \
             package verification unavailable)"
        ));
    }

    fn add(&mut self, h: Header) {
        for (path, digest) in h.files {
            let f = self.files.entry(path).or_default();
            if !f.packages.contains(&h.name) {
                f.packages.push(h.name.clone());
            }
            if f.digest.is_none() && !digest.is_empty() {
                if let Some(algo) = h.algo {
                    f.digest = Some((algo, digest));
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Who owns `path` (inside `root`) and whether its content is the package's.
    pub fn check(&self, root: &Root, path: &str) -> Ownership {
        // Merged /usr: the database may spell the path the other way.
        let alias = crate::dpkg::merged_usr_alias(path);
        let Some(f) = self
            .files
            .get(path)
            .or_else(|| alias.as_ref().and_then(|a| self.files.get(a)))
        else {
            return Ownership::Unowned;
        };
        let packages = f.packages.clone();
        let Some((algo, expected)) = &f.digest else {
            return Ownership::NoChecksum(packages);
        };
        let actual = match algo {
            DigestAlgo::Md5 => file_digest::<md5::Md5>(root, path),
            DigestAlgo::Sha256 => file_digest::<sha2::Sha256>(root, path),
            DigestAlgo::Sha384 => file_digest::<sha2::Sha384>(root, path),
            DigestAlgo::Sha512 => file_digest::<sha2::Sha512>(root, path),
        };
        Ownership::of_digests(packages, expected, actual)
    }
}

/// The header blobs of the RPM SQLite database at `path` inside `root` (`Packages` rows), as
/// `rpm` wrote them.
pub fn sqlite_headers(root: &Root, path: &str) -> Result<Vec<Vec<u8>>, String> {
    Ok(read_sqlite(root, path)?
        .0
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// A directory only this process may enter, removed with what is in it when dropped.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn new(what: &str) -> Result<PrivateDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "unithunt-{what}-{}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        // Not `create_dir_all`: a directory someone made there first is not ours.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the regular file `path` of the root to `to` (a new file, mode 0600) through
/// [`Root::open_file`], at most `cap` bytes; `Ok(false)` when it is empty.
fn copy_capped(root: &Root, path: &str, to: &std::path::Path, cap: u64) -> Result<bool, Refused> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let open = root.open_file(path)?;
    let too_large = || Refused::TooLarge {
        path: open.inside.clone(),
        cap,
    };
    if open.meta.len() > cap {
        return Err(too_large());
    }
    let io = |e: std::io::Error| Refused::Io(to.display().to_string(), e.to_string());
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io)?;
    let copied =
        std::io::copy(&mut (&open.file).take(cap.saturating_add(1)), &mut out).map_err(io)?;
    if copied > cap {
        return Err(too_large());
    }
    Ok(copied > 0)
}

/// `(hnum, header blob)` rows of `Packages`, and notes on what was left out.
type SqliteRows = (Vec<(i64, Vec<u8>)>, Vec<String>);

/// The `Packages` rows of the RPM SQLite database at `path` inside `root`, and notes on what was
/// left out. The database and its write-ahead log are copied (inside the root, regular files,
/// capped) into a private directory and opened there: SQLite opens files by name and would
/// follow links out of the root, and a live database must not be touched. The copy is opened
/// read-only and `immutable` when there is no log to replay. Nothing in the file is trusted:
/// `Packages` must be a plain table (not a view, no triggers, no generated columns), values are
/// capped by `SQLITE_LIMIT_LENGTH`, the steps SQLite takes, the rows and their bytes by budgets.
fn read_sqlite(root: &Root, path: &str) -> Result<SqliteRows, String> {
    use rusqlite::limits::Limit;
    use rusqlite::{Connection, OpenFlags};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let mut notes = Vec::new();
    let dir = PrivateDir::new("rpmdb")?;
    let db = dir.0.join("rpmdb.sqlite");
    copy_capped(root, path, &db, MAX_SQLITE_BYTES).map_err(|e| e.to_string())?;
    let wal_path = format!("{path}-wal");
    let has_log = match copy_capped(
        root,
        &wal_path,
        &dir.0.join("rpmdb.sqlite-wal"),
        MAX_SQLITE_BYTES,
    ) {
        Ok(copied) => copied,
        Err(e) if e.is_missing() => {
            if let Some(note) = root.dangling_link(&wal_path) {
                notes.push(format!(
                    "{note}; the database is read without its write-ahead log"
                ));
            }
            false
        }
        Err(e) => {
            // The database without its log is as of the last checkpoint: older, still RPM's.
            notes.push(format!(
                "{e}; the database is read without its write-ahead log"
            ));
            let _ = std::fs::remove_file(dir.0.join("rpmdb.sqlite-wal"));
            false
        }
    };
    let conn = if has_log {
        Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)
    } else {
        let uri = format!(
            "file:{}?mode=ro&immutable=1",
            // Percent-encode what a URI would misread in a path.
            db.to_string_lossy()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23")
        );
        Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
    }
    .map_err(|e| e.to_string())?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_HEADER_BYTES as i32);
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 20);
    conn.set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, 100);
    conn.set_limit(Limit::SQLITE_LIMIT_COMPOUND_SELECT, 10);
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    conn.set_limit(Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 1);
    // Every 1,000 steps; counted so that an interruption is told from other errors.
    const STEPS_PER_CALL: u64 = 1000;
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    conn.progress_handler(
        STEPS_PER_CALL as i32,
        Some(move || {
            counter.fetch_add(1, Ordering::Relaxed) + 1 > MAX_SQLITE_STEPS / STEPS_PER_CALL
        }),
    );
    let over_steps = |e: rusqlite::Error| {
        if calls.load(Ordering::Relaxed) > MAX_SQLITE_STEPS / STEPS_PER_CALL {
            format!("over the budget of {MAX_SQLITE_STEPS} SQLite steps")
        } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::TooBig) {
            format!("a value over the {MAX_HEADER_BYTES}-byte limit ({e})")
        } else {
            e.to_string()
        }
    };
    // Functions from the schema (views, triggers, generated columns, defaults) are not run.
    conn.execute_batch("PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;")
        .map_err(&over_steps)?;
    check_schema(&conn).map_err(|e| match e {
        SchemaError::Sql(e) => over_steps(e),
        SchemaError::Refused(why) => why,
    })?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .map_err(&over_steps)?;
    let mut rows = stmt.query([]).map_err(&over_steps)?;
    let mut out = Vec::new();
    let mut total = 0u64;
    while let Some(row) = rows.next().map_err(&over_steps)? {
        if out.len() >= MAX_PACKAGES {
            return Err(format!("more than {MAX_PACKAGES} packages"));
        }
        let hnum: i64 = row.get(0).map_err(&over_steps)?;
        let blob: Vec<u8> = row.get(1).map_err(&over_steps)?;
        total += blob.len() as u64;
        if total > MAX_HEADER_TOTAL_BYTES {
            return Err(format!(
                "over {MAX_HEADER_TOTAL_BYTES} bytes of package headers"
            ));
        }
        out.push((hnum, blob));
    }
    Ok((out, notes))
}

enum SchemaError {
    Sql(rusqlite::Error),
    Refused(String),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(e: rusqlite::Error) -> SchemaError {
        SchemaError::Sql(e)
    }
}

/// `Packages` must be what RPM makes: a table (not a view or a virtual table), with no trigger
/// and no generated column, having `hnum` and `blob`. Names in SQLite ignore ASCII case.
fn check_schema(conn: &rusqlite::Connection) -> Result<(), SchemaError> {
    let refuse = |why: String| Err(SchemaError::Refused(why));
    let mut stmt = conn.prepare(
        "SELECT type, name, coalesce(sql, '') FROM sqlite_master \
         WHERE name = 'Packages' COLLATE NOCASE OR tbl_name = 'Packages' COLLATE NOCASE",
    )?;
    let mut objects = stmt.query([])?;
    let mut tables = 0;
    while let Some(row) = objects.next()? {
        let (kind, name, sql): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let is_packages = name.eq_ignore_ascii_case("Packages");
        match kind.as_str() {
            "table" if is_packages => {
                let plain = sql
                    .split_whitespace()
                    .take(2)
                    .map(str::to_ascii_uppercase)
                    .eq(["CREATE", "TABLE"]);
                if !plain {
                    return refuse(
                        "Packages is not a plain table (a virtual table?); not read".into(),
                    );
                }
                tables += 1;
            }
            "index" => {}
            other => {
                return refuse(format!(
                    "Packages has a {other} ({name}), which RPM never makes; not read"
                ))
            }
        }
    }
    if tables != 1 {
        return refuse("no Packages table; not an RPM database".into());
    }
    let mut stmt = conn.prepare("SELECT name, hidden FROM pragma_table_xinfo('Packages')")?;
    let mut columns = stmt.query([])?;
    let mut wanted = 0;
    while let Some(row) = columns.next()? {
        let (name, hidden): (String, i64) = (row.get(0)?, row.get(1)?);
        if hidden != 0 {
            return refuse(format!(
                "Packages has a generated or hidden column ({name}), which RPM never makes; not read"
            ));
        }
        if name.eq_ignore_ascii_case("hnum") || name.eq_ignore_ascii_case("blob") {
            wanted += 1;
        }
    }
    if wanted != 2 {
        return refuse("Packages lacks the hnum and blob columns; not an RPM database".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob as RPM lays it out: (tag, type, values) entries, strings NUL-terminated,
    /// INT32 values big-endian and 4-byte aligned.
    fn blob(entries: &[(i32, u32, Vec<&str>, Vec<u32>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, strings, ints) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            let offset = data.len() as u32;
            let count = if *kind == TYPE_INT32 {
                for i in ints {
                    data.extend_from_slice(&i.to_be_bytes());
                }
                ints.len()
            } else {
                for s in strings {
                    data.extend_from_slice(s.as_bytes());
                    data.push(0);
                }
                strings.len()
            };
            for v in [*tag as u32, *kind, offset, count as u32] {
                index.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn sample() -> Vec<u8> {
        blob(&[
            (TAG_NAME, TYPE_STRING, vec!["cronie"], vec![]),
            (TAG_FILEDIGESTALGO, TYPE_INT32, vec![], vec![8]),
            (
                TAG_BASENAMES,
                TYPE_STRING_ARRAY,
                vec!["crond.service", "crond", "cron.d"],
                vec![],
            ),
            (
                TAG_DIRNAMES,
                TYPE_STRING_ARRAY,
                vec!["/usr/lib/systemd/system/", "/usr/sbin/", "/etc/"],
                vec![],
            ),
            (TAG_DIRINDEXES, TYPE_INT32, vec![], vec![0, 1, 2]),
            (
                TAG_FILEDIGESTS,
                TYPE_STRING_ARRAY,
                vec!["ab12", "cd34", ""],
                vec![],
            ),
        ])
    }

    #[test]
    fn a_header_gives_its_files_with_digests() {
        let h = parse_header(&sample()).unwrap();
        assert_eq!(h.name, "cronie");
        assert_eq!(h.algo, Some(DigestAlgo::Sha256));
        assert_eq!(
            h.files,
            [
                (
                    "/usr/lib/systemd/system/crond.service".into(),
                    "ab12".into()
                ),
                ("/usr/sbin/crond".into(), "cd34".into()),
                ("/etc/cron.d".into(), String::new()),
            ]
        );
    }

    #[test]
    fn a_damaged_header_is_an_error_never_a_panic() {
        let good = sample();
        // Every truncation, and every single byte set to 0xff.
        for n in 0..good.len() {
            let _ = parse_header(&good[..n]);
            let mut bad = good.clone();
            bad[n] = 0xff;
            let _ = parse_header(&bad);
        }
        assert!(parse_header(&good[..7]).is_err());
        // An index entry count that does not fit.
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&huge).unwrap_err().contains("do not fit"));
        // A directory index out of range.
        let bad = blob(&[
            (TAG_NAME, TYPE_STRING, vec!["x"], vec![]),
            (TAG_BASENAMES, TYPE_STRING_ARRAY, vec!["a"], vec![]),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, vec!["/"], vec![]),
            (TAG_DIRINDEXES, TYPE_INT32, vec![], vec![7]),
        ]);
        assert!(parse_header(&bad).unwrap_err().contains("out of range"));
    }

    /// Issue 15 item 6: a million base names each joined to a 100 kB directory name (a 6 MB
    /// header, 100 GB of paths) is refused by counting, before a path is built.
    #[test]
    fn a_huge_join_is_refused_before_it_is_built() {
        let dir = format!("/{}/", "d".repeat(100 << 10));
        let bases = vec!["a"; 1_000_000];
        let huge = blob(&[
            (TAG_NAME, TYPE_STRING, vec!["join"], vec![]),
            (TAG_BASENAMES, TYPE_STRING_ARRAY, bases, vec![]),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, vec![&dir], vec![]),
            (TAG_DIRINDEXES, TYPE_INT32, vec![], vec![0; 1_000_000]),
        ]);
        let mut budget = HeaderBudget::default();
        let e = parse_header_within(&huge, &mut budget).unwrap_err();
        assert!(e.contains("over the budget of"), "{e}");
        assert!(budget.exhausted.is_some());
        // What was left of the budget is untouched: a later, ordinary header still fits.
        assert_eq!(budget.files, MAX_FILES);
        assert!(parse_header_within(&sample(), &mut budget).is_ok());
    }
}
