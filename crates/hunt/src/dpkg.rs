//! Which Debian package owns a file, and whether the file is as the package shipped it, read
//! offline from the dpkg database of a root (never by running `dpkg`: the root may be an image,
//! and nothing from an image is executed).
//!
//! `/var/lib/dpkg/info/<package>[:<arch>].list` lists every path a package installed;
//! `<package>.md5sums` holds `<md5>  <path without the leading slash>` for its files except
//! configuration files, whose checksums are in `/var/lib/dpkg/status` under `Conffiles:`. On a
//! system with merged `/usr`, a path the database records under `/lib` (or `/bin`, `/sbin`,
//! `/lib64`...) is on disk under `/usr/lib`, and the other way round: both spellings are tried.

use crate::root::Root;
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

impl Dpkg {
    /// Reads the database under `root`; a root without one is an empty database.
    pub fn load(root: &Root) -> Dpkg {
        let mut db = Dpkg::default();
        let info = match root.resolve("/var/lib/dpkg/info") {
            Ok(r) => r.host,
            Err(_) => return db,
        };
        let entries = match std::fs::read_dir(&info) {
            Ok(e) => e,
            Err(e) => {
                db.problems.push(format!("/var/lib/dpkg/info: {e}"));
                return db;
            }
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let path = info.join(&name);
            if let Some(stem) = name.strip_suffix(".list") {
                let pkg = package_of(stem).to_string();
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        for line in text.lines().filter(|l| l.starts_with('/')) {
                            let owners = db.owners.entry(line.to_string()).or_default();
                            if !owners.contains(&pkg) {
                                owners.push(pkg.clone());
                            }
                        }
                    }
                    Err(e) => db.problems.push(format!("/var/lib/dpkg/info/{name}: {e}")),
                }
            } else if name.ends_with(".md5sums") {
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        for line in text.lines() {
                            if let Some((sum, file)) = line.split_once("  ") {
                                db.md5.insert(
                                    format!("/{}", file.trim_start_matches('/')),
                                    sum.to_string(),
                                );
                            }
                        }
                    }
                    Err(e) => db.problems.push(format!("/var/lib/dpkg/info/{name}: {e}")),
                }
            }
        }
        if let Ok(status) = root.resolve("/var/lib/dpkg/status") {
            match std::fs::read_to_string(&status.host) {
                Ok(text) => db.read_conffiles(&text),
                Err(e) => db.problems.push(format!("/var/lib/dpkg/status: {e}")),
            }
        }
        db
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
    let resolved = root.resolve(path).ok()?;
    let meta = std::fs::symlink_metadata(&resolved.host).ok()?;
    if !meta.is_file() || meta.len() > MAX_CHECKSUM_BYTES {
        return None;
    }
    let mut f = std::fs::File::open(&resolved.host)
        .ok()?
        .take(MAX_CHECKSUM_BYTES);
    let mut hasher = D::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
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
