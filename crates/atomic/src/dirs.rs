//! Directories audit watches need, and those a played test leaves behind.
//!
//! `auditctl -w DIR` and `-F dir=DIR` need DIR to exist when the rule is loaded: on a fresh host
//! without `/usr/local/lib/systemd`, the watch is refused, and a generator written there later
//! is never recorded (test 4 failed the first `atomic verify` on a new machine and passed the
//! second). So the watched directories are created first; `verify` removes what it created, and
//! what the tests' `mkdir -p` created, once empty.

use std::path::{Path, PathBuf};

/// `path` and its ancestors that do not exist, outermost first.
pub fn missing_dirs(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_err())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// The directories audit rules watch: `-w DIR` and `-F dir=DIR`.
pub fn watched_dirs<'a>(rules: impl Iterator<Item = &'a str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for rule in rules {
        let words: Vec<&str> = rule.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let dir = if *w == "-w" {
                words.get(i + 1).copied()
            } else {
                w.strip_prefix("dir=")
            };
            if let Some(d) = dir {
                let d = PathBuf::from(d.trim_end_matches('/'));
                if d.is_absolute() && !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
    }
    dirs
}

/// Creates each watched directory that is missing; returns what was created, outermost first.
pub fn create_watched_dirs<'a>(rules: impl Iterator<Item = &'a str>) -> Vec<PathBuf> {
    let mut created = Vec::new();
    for d in watched_dirs(rules) {
        let missing = missing_dirs(&d);
        if !missing.is_empty() && std::fs::create_dir_all(&d).is_ok() {
            created.extend(missing);
        }
    }
    created
}

/// Removes directories this run created, innermost first, each only if empty (what a test or
/// anything else put there stays).
pub fn remove_if_empty(created: &[PathBuf]) {
    let mut dirs = created.to_vec();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_directories_are_created_and_removed_once_empty() {
        let base = std::env::temp_dir().join(format!("unithunt-dirs-{}", std::process::id()));
        let a = base.join("usr/local/lib/systemd");
        let b = base.join("home");
        let rules = [
            format!("-w {}/ -p wa", a.display()),
            format!(
                "-a always,exit -F arch=b64 -S openat -F dir={}",
                b.display()
            ),
        ];
        assert_eq!(
            watched_dirs(rules.iter().map(String::as_str)),
            vec![a.clone(), b.clone()]
        );
        let created = create_watched_dirs(rules.iter().map(String::as_str));
        assert!(a.is_dir() && b.is_dir());
        assert_eq!(created.first(), Some(&base));
        // Something a test left in one of them keeps that one (and its parents).
        std::fs::write(b.join("keep"), "x").unwrap();
        remove_if_empty(&created);
        assert!(!a.exists() && !base.join("usr").exists());
        assert!(b.join("keep").exists());
        let _ = std::fs::remove_dir_all(&base);
    }
}
