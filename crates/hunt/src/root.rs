//! Paths inside a root (a mounted image, a triage collection, or `/`), resolved the way the kernel
//! would resolve them if that root were `/`, and never outside it.
//!
//! An image's absolute symbolic links (`/etc/systemd/system/x.service -> /usr/lib/...`) must land
//! in the image, not on the analyst's machine, and `..` cannot climb above the root: the same
//! rules as `openat2(RESOLVE_IN_ROOT)`, written with `lstat` and `readlink` so that they work on any
//! kernel and report what they met. Symbolic link loops end after [`MAX_LINKS`] links, as `ELOOP`.

use std::fmt;
use std::path::PathBuf;

/// Links followed while resolving one path before giving up (Linux's limit).
pub const MAX_LINKS: usize = 40;

/// The root everything is resolved in.
#[derive(Clone, Debug)]
pub struct Root {
    base: PathBuf,
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

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
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
