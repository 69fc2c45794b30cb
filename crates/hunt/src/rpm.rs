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
use crate::root::Root;
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
/// A Packages file larger than this is not read (the largest real ones are a few hundred MB).
const MAX_BDB_BYTES: u64 = 2 << 30;

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

/// Parses a header blob as the database stores it.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
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
    let mut files = Vec::with_capacity(basenames.len());
    for (i, base) in basenames.iter().enumerate() {
        let dir = dirnames
            .get(dirindexes[i] as usize)
            .ok_or_else(|| format!("{name}: directory index {} out of range", dirindexes[i]))?;
        files.push((
            format!("{dir}{base}"),
            digests.get(i).cloned().unwrap_or_default(),
        ));
    }
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
    /// What could not be read, with why.
    pub problems: Vec<String>,
}

impl Rpm {
    /// Reads the database under `root`; a root without one is an empty database.
    pub fn load(root: &Root) -> Rpm {
        let mut db = Rpm::default();
        for path in SQLITE_PATHS {
            let Ok(r) = root.resolve(path) else {
                continue;
            };
            match read_sqlite(&r.host) {
                Ok(blobs) => {
                    db.found = path.to_string();
                    for (hnum, blob) in blobs {
                        match parse_header(&blob) {
                            Ok(h) => db.add(h),
                            Err(e) => db.problems.push(format!("{path}: package {hnum}: {e}")),
                        }
                    }
                }
                Err(e) => db.problems.push(format!("{path}: {e}")),
            }
            break;
        }
        if db.found.is_empty() {
            if let Ok(r) = root.resolve(BDB_PATH) {
                match read_bdb(&r.host) {
                    Ok((blobs, problems)) => {
                        db.found = BDB_PATH.to_string();
                        db.problems
                            .extend(problems.into_iter().map(|p| format!("{BDB_PATH}: {p}")));
                        // The record under key 0 is RPM's next-instance counter (4 bytes).
                        for blob in blobs.into_iter().filter(|b| b.len() > 8) {
                            match parse_header(&blob) {
                                Ok(h) => db.add(h),
                                Err(e) => db.problems.push(format!("{BDB_PATH}: {e}")),
                            }
                        }
                    }
                    Err(e) => db.problems.push(format!("{BDB_PATH}: {e}")),
                }
            }
        }
        if db.found.is_empty() {
            for path in NDB_PATHS {
                if root.resolve(path).is_ok() {
                    db.problems.push(format!(
                        "{path}: an RPM database in the ndb format, which this version does not read: \
                         RPM-installed files show as unowned"
                    ));
                }
            }
        }
        db
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

/// The values of RPM's Berkeley DB `Packages` file (package headers, and the instance counter).
fn read_bdb(path: &std::path::Path) -> Result<(Vec<Vec<u8>>, Vec<String>), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_BDB_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_BDB_BYTES}-byte limit; not read",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    crate::bdb::hash_values(&bytes)
}

/// The header blobs of an RPM SQLite database (`Packages` rows), as `rpm` wrote them.
pub fn sqlite_headers(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    Ok(read_sqlite(path)?.into_iter().map(|(_, b)| b).collect())
}

/// The `Packages` rows of an RPM SQLite database, opened without writing to it: read-only and
/// `immutable` (no lock, no journal) when it has no write-ahead log to replay, else from a
/// private copy of the database and its log (an image may be mounted read-only, and a live
/// database must not be touched).
fn read_sqlite(path: &std::path::Path) -> Result<Vec<(i64, Vec<u8>)>, String> {
    use rusqlite::{Connection, OpenFlags};
    let wal = path.with_extension("sqlite-wal");
    let has_log = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let copy_dir;
    let conn = if has_log {
        copy_dir = std::env::temp_dir().join(format!(
            "unithunt-rpmdb-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&copy_dir).map_err(|e| e.to_string())?;
        let db = copy_dir.join("rpmdb.sqlite");
        std::fs::copy(path, &db).map_err(|e| e.to_string())?;
        std::fs::copy(&wal, copy_dir.join("rpmdb.sqlite-wal")).map_err(|e| e.to_string())?;
        Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)
    } else {
        copy_dir = std::path::PathBuf::new();
        let uri = format!(
            "file:{}?mode=ro&immutable=1",
            // Percent-encode what a URI would misread in a path.
            path.to_string_lossy()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23")
        );
        Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
    }
    .map_err(|e| e.to_string());
    let rows = conn.and_then(|conn| {
        let mut stmt = conn
            .prepare("SELECT hnum, blob FROM Packages")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    });
    if !copy_dir.as_os_str().is_empty() {
        let _ = std::fs::remove_dir_all(&copy_dir);
    }
    rows
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
}
