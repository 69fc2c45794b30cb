//! Which Debian package owns a file, and whether the file is as the package shipped it, read
//! offline from the dpkg database of a root (never by running `dpkg`: the root may be an image,
//! and nothing from an image is executed).
//!
//! `/var/lib/dpkg/info/<package>[:<arch>].list` lists every path a package installed;
//! `<package>.md5sums` holds `<md5>  <path without the leading slash>` for its files except
//! configuration files, whose checksums are in `/var/lib/dpkg/status` under `Conffiles:`. On a
//! system with merged `/usr`, a path the database records under `/lib` (or `/bin`, `/sbin`,
//! `/lib64`...) is on disk under `/usr/lib`, and the other way round: both spellings are tried.

use crate::root::{Refused, Root};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::io::Read;

/// Files larger than this are not checksummed (no unit or generator is near it).
pub const MAX_CHECKSUM_BYTES: u64 = 64 << 20;

/// What the database says of one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// No installed package lists it.
    Unowned,
    /// No package database was found: nobody can say (not scored; said once in the summary).
    Unknown,
    /// Listed by these packages; the file matches the recorded checksum.
    Unmodified(Vec<String>),
    /// Listed, and its content differs from what the package shipped.
    Modified {
        packages: Vec<String>,
        expected: String,
        actual: String,
    },
    /// Listed, but no checksum is recorded (a directory, a symbolic link, a file the package
    /// creates at install time) or the file could not be read.
    NoChecksum(Vec<String>),
}

/// The dpkg database of one root.
#[derive(Debug, Default)]
pub struct Dpkg {
    owners: HashMap<String, Vec<String>>,
    md5: HashMap<String, String>,
    /// Files of the database that could not be read, with why.
    pub problems: Vec<String>,
}

/// `/lib/x` <-> `/usr/lib/x` for the directories merged `/usr` moves.
pub(crate) fn merged_usr_alias(path: &str) -> Option<String> {
    const MERGED: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
    if let Some(rest) = path.strip_prefix("/usr") {
        if MERGED
            .iter()
            .any(|d| rest == *d || rest.starts_with(&format!("{d}/")))
        {
            return Some(rest.to_string());
        }
    }
    MERGED
        .iter()
        .any(|d| path == *d || path.starts_with(&format!("{d}/")))
        .then(|| format!("/usr{path}"))
}

/// The package name of an info file's stem (`libc6:amd64` -> `libc6`).
fn package_of(stem: &str) -> &str {
    stem.split(':').next().unwrap_or(stem)
}

/// One `.list` or `.md5sums` file longer than this is not read (the largest real ones, of kernel
/// module and TeX packages, are a few MB).
pub const MAX_INFO_FILE_BYTES: u64 = 64 << 20;
/// `/var/lib/dpkg/status` longer than this is not read (a full desktop's is about 10 MB).
pub const MAX_STATUS_BYTES: u64 = 256 << 20;
/// The whole database read at most (`info/` and `status` together); past it the rest is not read.
pub const MAX_DPKG_BYTES: u64 = 1 << 30;

impl Dpkg {
    /// Reads the database under `root`; a root without one is an empty database. Every file is
    /// read through [`Root::read_file`] (inside the root, regular files only, capped); what is
    /// refused is in [`Dpkg::problems`].
    pub fn load(root: &Root) -> Dpkg {
        let mut db = Dpkg::default();
        let names = match root.list_dir("/var/lib/dpkg/info") {
            Ok(names) => names,
            Err(e) if e.is_missing() => return db,
            Err(e) => {
                db.problems.push(e.to_string());
                return db;
            }
        };
        let mut budget = MAX_DPKG_BYTES;
        let mut read = |db: &mut Dpkg, path: &str, cap: u64| -> Option<String> {
            if budget == 0 {
                return None;
            }
            match root.read_file(path, cap.min(budget)) {
                Ok(bytes) => {
                    budget -= bytes.len() as u64;
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                Err(Refused::TooLarge { .. }) if budget < cap => {
                    budget = 0;
                    db.problems.push(format!(
                        "/var/lib/dpkg: over {MAX_DPKG_BYTES} bytes in total; {path} and the rest \
                         not read (files they list show as unowned)"
                    ));
                    None
                }
                Err(e) => {
                    let note = match e.is_missing() {
                        true => root.dangling_link(path),
                        false => None,
                    };
                    db.problems.push(note.unwrap_or_else(|| e.about(path)));
                    None
                }
            }
        };
        for name in names {
            let path = format!("/var/lib/dpkg/info/{name}");
            if let Some(stem) = name.strip_suffix(".list") {
                if let Some(text) = read(&mut db, &path, MAX_INFO_FILE_BYTES) {
                    db.add_list(package_of(stem), &text);
                }
            } else if name.ends_with(".md5sums") {
                if let Some(text) = read(&mut db, &path, MAX_INFO_FILE_BYTES) {
                    db.add_md5sums(&text);
                }
            }
        }
        match root.metadata("/var/lib/dpkg/status") {
            Err(e) if e.is_missing() => {
                db.problems
                    .extend(root.dangling_link("/var/lib/dpkg/status"));
            }
            _ => {
                if let Some(text) = read(&mut db, "/var/lib/dpkg/status", MAX_STATUS_BYTES) {
                    db.add_status(&text);
                }
            }
        }
        db
    }

    /// A package's `.list`: the paths it installed, one a line.
    pub fn add_list(&mut self, package: &str, text: &str) {
        for line in text.lines().filter(|l| l.starts_with('/')) {
            let owners = self.owners.entry(line.to_string()).or_default();
            if !owners.iter().any(|p| p == package) {
                owners.push(package.to_string());
            }
        }
    }

    /// A package's `.md5sums`: `<md5>  <path without the leading slash>` lines.
    pub fn add_md5sums(&mut self, text: &str) {
        for line in text.lines() {
            if let Some((sum, file)) = line.split_once("  ") {
                self.md5.insert(
                    format!("/{}", file.trim_start_matches('/')),
                    sum.to_string(),
                );
            }
        }
    }

    /// The `status` file: the checksums of configuration files.
    pub fn add_status(&mut self, text: &str) {
        self.read_conffiles(text);
    }

    /// `Conffiles:` of installed packages: ` /etc/x <md5>[ obsolete]` lines.
    fn read_conffiles(&mut self, status: &str) {
        let mut in_conffiles = false;
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix(' ') {
                if in_conffiles {
                    let mut words = rest.split_whitespace();
                    if let (Some(path), Some(sum)) = (words.next(), words.next()) {
                        if words.next() != Some("obsolete") {
                            self.md5.insert(path.to_string(), sum.to_string());
                        }
                    }
                }
                continue;
            }
            in_conffiles = line.starts_with("Conffiles:");
        }
    }

    /// True when no package database was found (every file would be unowned).
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The packages listing `path` (either spelling under merged `/usr`).
    pub fn owners(&self, path: &str) -> Vec<String> {
        let mut out: Vec<String> = self.owners.get(path).cloned().unwrap_or_default();
        if let Some(alias) = merged_usr_alias(path) {
            for p in self.owners.get(&alias).into_iter().flatten() {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    fn expected_md5(&self, path: &str) -> Option<&str> {
        self.md5
            .get(path)
            .or_else(|| merged_usr_alias(path).and_then(|a| self.md5.get(&a)))
            .map(String::as_str)
    }

    /// Who owns `path` (inside `root`) and whether its content is the package's.
    pub fn check(&self, root: &Root, path: &str) -> Ownership {
        let packages = self.owners(path);
        if packages.is_empty() {
            return Ownership::Unowned;
        }
        let Some(expected) = self.expected_md5(path) else {
            return Ownership::NoChecksum(packages);
        };
        Ownership::of_digests(packages, expected, file_md5(root, path))
    }
}

/// The MD5 of a regular file inside the root (links followed inside it); `None` for anything
/// else (a FIFO or device is never opened) or past [`MAX_CHECKSUM_BYTES`].
pub fn file_md5(root: &Root, path: &str) -> Option<String> {
    file_digest::<Md5>(root, path)
}

/// The hex digest, by `D`, of a regular file inside the root (links followed inside it); `None`
/// for anything else (a FIFO or device is never opened) or past [`MAX_CHECKSUM_BYTES`].
pub(crate) fn file_digest<D: Digest>(root: &Root, path: &str) -> Option<String> {
    let open = root.open_file(path).ok()?;
    if open.meta.len() > MAX_CHECKSUM_BYTES {
        return None;
    }
    // One byte more than the limit: a file that grows past it while read has no digest.
    let mut f = open.file.take(MAX_CHECKSUM_BYTES + 1);
    let mut total = 0u64;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_CHECKSUM_BYTES {
            return None;
        }
        hasher.update(&buf[..n]);
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

impl Ownership {
    /// Owned by `packages`: unmodified when the file's digest is the recorded one.
    pub(crate) fn of_digests(
        packages: Vec<String>,
        expected: &str,
        actual: Option<String>,
    ) -> Ownership {
        match actual {
            Some(actual) if actual.eq_ignore_ascii_case(expected) => {
                Ownership::Unmodified(packages)
            }
            Some(actual) => Ownership::Modified {
                packages,
                expected: expected.to_string(),
                actual,
            },
            None => Ownership::NoChecksum(packages),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_and_modification_from_an_offline_database() {
        let tree = crate::testtree::Tree::new("dpkg");
        let base = &tree.0;
        let put = |p: &str, text: &str| tree.file(p, text);
        // The database records /lib (as Debian packages do); the disk has merged /usr.
        put(
            "/var/lib/dpkg/info/cron.list",
            "/.\n/lib\n/lib/systemd/system/cron.service\n/etc/cron.d/x\n",
        );
        put(
            "/var/lib/dpkg/info/cron.md5sums",
            "b1946ac92492d2347c6235b4d2611184  lib/systemd/system/cron.service\n",
        );
        put(
            "/var/lib/dpkg/info/at:amd64.list",
            "/lib/systemd/system/atd.service\n",
        );
        put(
            "/var/lib/dpkg/status",
            "Package: cron\nStatus: install ok installed\nConffiles:\n /etc/cron.d/x 00000000000000000000000000000000\n /etc/old 11111111111111111111111111111111 obsolete\nDescription: x\n\nPackage: at\n",
        );
        put("/usr/lib/systemd/system/cron.service", "hello\n");
        put("/usr/lib/systemd/system/atd.service", "[Service]\n");
        put("/etc/cron.d/x", "edited by the admin\n");
        put("/etc/systemd/system/evil.service", "[Service]\n");
        let root = Root::new(base);
        let db = Dpkg::load(&root);
        assert!(db.problems.is_empty(), "{:?}", db.problems);
        // md5("hello\n") is b1946ac9... (md5sum): the packaged unit is intact.
        assert_eq!(
            db.check(&root, "/usr/lib/systemd/system/cron.service"),
            Ownership::Unmodified(vec!["cron".into()])
        );
        std::fs::write(
            base.join("usr/lib/systemd/system/cron.service"),
            "ExecStart=/tmp/x\n",
        )
        .unwrap();
        assert!(matches!(
            db.check(&root, "/usr/lib/systemd/system/cron.service"),
            Ownership::Modified { ref packages, .. } if packages == &["cron".to_string()]
        ));
        assert_eq!(
            db.check(&root, "/usr/lib/systemd/system/atd.service"),
            Ownership::NoChecksum(vec!["at".into()])
        );
        assert!(matches!(
            db.check(&root, "/etc/cron.d/x"),
            Ownership::Modified { .. }
        ));
        assert_eq!(
            db.check(&root, "/etc/systemd/system/evil.service"),
            Ownership::Unowned
        );
    }

    #[test]
    fn merged_usr_spellings() {
        assert_eq!(
            merged_usr_alias("/lib/systemd/x").as_deref(),
            Some("/usr/lib/systemd/x")
        );
        assert_eq!(merged_usr_alias("/usr/sbin/x").as_deref(), Some("/sbin/x"));
        assert_eq!(merged_usr_alias("/usr/share/x"), None);
        assert_eq!(merged_usr_alias("/libexec/x"), None);
        assert_eq!(merged_usr_alias("/lib64"), Some("/usr/lib64".into()));
    }
}
