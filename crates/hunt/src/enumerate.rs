//! The units a manager would load, found the way systemd finds them (systemd.unit(5)): the search
//! path in priority order (the first directory holding a name wins), masking (a link to
//! `/dev/null` or an empty file), aliases (a link to another unit name), templates and instances,
//! drop-ins (`foo.service.d/`, `foo@.service.d/`, `foo-.service.d/`, type-wide `service.d/`,
//! one file name overriding the same name in lower directories, applied in file-name order), and
//! what is enabled (`*.wants/`, `*.requires/`, `*.upholds/` links).
//!
//! Nothing is opened here but directories, through [`Root::list_dir`]: a FIFO or a device in a
//! unit directory is listed as what it is, and only [`Root::read_file`] (which refuses them)
//! ever reads a file.

use crate::root::{Refused, ResolveError, Root};
use std::collections::BTreeMap;

/// Unit file suffixes (systemd.unit(5)).
pub const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "timer",
    "path",
    "target",
    "mount",
    "automount",
    "swap",
    "slice",
    "scope",
    "device",
];

/// The unit type of a file name, if it is a unit name.
pub fn unit_type(name: &str) -> Option<&str> {
    let (stem, suffix) = name.rsplit_once('.')?;
    (!stem.is_empty() && UNIT_SUFFIXES.contains(&suffix)).then_some(suffix)
}

/// What a unit name is, in the directory that decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// A file (or a link to a file) with the unit's definition.
    File(String),
    /// Masked: a link to `/dev/null` or an empty file.
    Masked(String),
    /// A link to another unit's name (the unit is an alias of it).
    Alias { link: String, target: String },
    /// Something systemd cannot load (a link loop, a link to nothing, a FIFO or device).
    Broken { path: String, why: String },
    /// No unit file by this name, only drop-ins for it (`ssh.service.d/override.conf` with no
    /// `ssh.service`): they apply to a unit of that name as soon as one appears (installed,
    /// generated, transient), so they are judged on their own.
    DropinsOnly,
}

/// One unit name found on the search path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundUnit {
    pub name: String,
    /// The directory entry that decides the unit, from the highest-priority directory.
    pub fragment: Fragment,
    /// Entries with the same name in lower-priority directories (overridden).
    pub overridden: Vec<String>,
    /// Drop-in files applied to it, in the order systemd applies them.
    pub dropins: Vec<String>,
    /// Units whose `.wants/`, `.requires/` or `.upholds/` directory links to this one.
    pub wanted_by: Vec<String>,
}

/// The units of one manager under `root`, by name.
pub fn enumerate(root: &Root, search_path: &[String]) -> Vec<FoundUnit> {
    enumerate_noting(root, search_path, &mut Vec::new())
}

/// [`enumerate`], adding to `refused` each directory that is there but was not read (more than
/// [`crate::root::MAX_DIR_ENTRIES`] entries, unreadable, swapped while opened), with why.
pub fn enumerate_noting(
    root: &Root,
    search_path: &[String],
    refused: &mut Vec<String>,
) -> Vec<FoundUnit> {
    let mut list_dir = |root: &Root, inside: &str| list_dir(root, inside, refused);
    // (name -> entries in priority order), drop-in dirs (dir name -> conf file name -> path),
    // enablement links (unit -> wanted by).
    let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut dropin_dirs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut wanted_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen_dirs: Vec<String> = Vec::new();
    for dir in search_path {
        let Ok(resolved) = root.resolve(dir) else {
            continue;
        };
        // A directory reached twice (`/lib` -> `/usr/lib`) counts once, at its higher rank.
        if seen_dirs.contains(&resolved.inside) {
            continue;
        }
        seen_dirs.push(resolved.inside.clone());
        for name in list_dir(root, &resolved.inside) {
            let inside = format!("{dir}/{name}");
            // Read through the resolved directory, which is where the names came from.
            let real = format!("{}/{name}", resolved.inside);
            let is_dir = root.metadata(&real).is_ok_and(|m| m.is_dir());
            if is_dir {
                if let Some(unit) = name.strip_suffix(".d") {
                    let slot = dropin_dirs.entry(unit.to_string()).or_default();
                    for conf in list_dir(root, &real)
                        .into_iter()
                        .filter(|c| c.ends_with(".conf"))
                    {
                        // A higher directory's file of the same name wins.
                        slot.entry(conf.clone())
                            .or_insert_with(|| format!("{inside}/{conf}"));
                    }
                    continue;
                }
                let wanter = [".wants", ".requires", ".upholds"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s));
                if let Some(wanter) = wanter {
                    for link in list_dir(root, &real)
                        .into_iter()
                        .filter(|l| unit_type(l).is_some())
                    {
                        let w = wanted_by.entry(link).or_default();
                        if !w.contains(&wanter.to_string()) {
                            w.push(wanter.to_string());
                        }
                    }
                }
                continue;
            }
            if unit_type(&name).is_some() {
                entries.entry(name).or_default().push(inside);
            }
        }
    }
    // Names only enablement links mention (instances of templates, typically) exist too.
    for name in wanted_by.keys() {
        entries.entry(name.clone()).or_default();
    }
    // Drop-in directories of a unit name that no directory holds (not type-wide `service.d`,
    // not a dash prefix `foo-.service.d`, not a template `foo@.service.d`, whose units are
    // others'): their drop-ins wait for the unit.
    // An instance's drop-ins (`getty@tty1.service.d`) make the instance a unit when its
    // template is there: judged through the template, not as drop-ins alone.
    let instances: Vec<String> = dropin_dirs
        .keys()
        .filter(|u| !entries.contains_key(*u))
        .filter(|u| template_of(u).is_some_and(|t| entries.contains_key(&t)))
        .cloned()
        .collect();
    for i in instances {
        entries.entry(i).or_default();
    }
    let orphans: Vec<String> = dropin_dirs
        .iter()
        .filter(|(unit, confs)| {
            !confs.is_empty()
                && unit_type(unit).is_some()
                && !entries.contains_key(*unit)
                && unit
                    .rsplit_once('.')
                    .is_some_and(|(stem, _)| !stem.ends_with('-') && !stem.ends_with('@'))
        })
        .map(|(unit, _)| unit.clone())
        .collect();
    let mut out = Vec::new();
    for name in orphans {
        let dropins = dropins_for(&name, &dropin_dirs);
        out.push(FoundUnit {
            wanted_by: wanted_by.get(&name).cloned().unwrap_or_default(),
            name,
            fragment: Fragment::DropinsOnly,
            overridden: Vec::new(),
            dropins,
        });
    }
    for (name, mut paths) in entries {
        let fragment = if paths.is_empty() {
            match template_of(&name) {
                Some(template) => match search_path
                    .iter()
                    .map(|d| format!("{d}/{template}"))
                    .find(|p| root.resolve_parent(p).is_ok())
                {
                    Some(p) => classify(root, &p),
                    None => Fragment::Broken {
                        path: name.clone(),
                        why: format!("instance of {template}, which no directory holds"),
                    },
                },
                None => Fragment::Broken {
                    path: name.clone(),
                    why: "only enablement links name it".into(),
                },
            }
        } else {
            classify(root, &paths.remove(0))
        };
        let dropins = dropins_for(&name, &dropin_dirs);
        out.push(FoundUnit {
            wanted_by: wanted_by.get(&name).cloned().unwrap_or_default(),
            name,
            fragment,
            overridden: paths,
            dropins,
        });
    }
    out
}

/// `foo@.service` for `foo@bar.service`.
fn template_of(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    let (prefix, instance) = stem.split_once('@')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// The drop-in directories that apply to `name`, most general first: the type-wide `service.d`,
/// each dash prefix (`foo-.service.d` for `foo-bar.service`), the template's, the unit's own. Files
/// are merged by name (a more specific directory's file of the same name wins) and applied in
/// file-name order.
fn dropins_for(name: &str, dirs: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Vec::new();
    };
    let mut keys = vec![suffix.to_string()];
    let mut at = 0;
    while let Some(i) = stem[at..].find('-') {
        let end = at + i + 1;
        keys.push(format!("{}.{suffix}", &stem[..end]));
        at = end;
    }
    if let Some(t) = template_of(name) {
        keys.push(t);
    }
    keys.push(name.to_string());
    let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
    for k in &keys {
        for (file, path) in dirs.get(k).into_iter().flatten() {
            merged.insert(file, path);
        }
    }
    merged.into_values().map(str::to_string).collect()
}

/// Sorted entry names of a directory inside the root (unreadable: none, as systemd skips a
/// directory it cannot read; why is added to `refused` unless it is simply missing).
fn list_dir(root: &Root, inside: &str, refused: &mut Vec<String>) -> Vec<String> {
    match root.list_dir(inside) {
        Ok(names) => names,
        Err(e) => {
            if !e.is_missing() {
                refused.push(format!("{}; its units are not hunted", e.about(inside)));
            }
            Vec::new()
        }
    }
}

/// What the directory entry at `inside` makes of its unit.
fn classify(root: &Root, inside: &str) -> Fragment {
    let Ok(entry) = root.resolve_parent(inside) else {
        return Fragment::Broken {
            path: inside.into(),
            why: "its directory cannot be resolved".into(),
        };
    };
    let Ok(meta) = root.symlink_metadata(&entry.inside) else {
        return Fragment::Broken {
            path: inside.into(),
            why: "vanished".into(),
        };
    };
    if meta.file_type().is_symlink() {
        let target = root.read_link(&entry.inside).unwrap_or_default();
        if target == "/dev/null" {
            return Fragment::Masked(inside.into());
        }
        let base = target.rsplit('/').next().unwrap_or(&target);
        let own = inside.rsplit('/').next().unwrap_or(inside);
        return match root.metadata(inside) {
            Ok(m) if m.is_file() => {
                if base != own && unit_type(base).is_some() {
                    Fragment::Alias {
                        link: inside.into(),
                        target: base.to_string(),
                    }
                } else if m.len() == 0 {
                    Fragment::Masked(inside.into())
                } else {
                    Fragment::File(inside.into())
                }
            }
            Ok(_) => Fragment::Broken {
                path: inside.into(),
                why: format!("links to {target}, which is not a regular file"),
            },
            Err(Refused::Resolve(ResolveError::Loop(_))) => Fragment::Broken {
                path: inside.into(),
                why: "a loop of symbolic links".into(),
            },
            Err(e) => Fragment::Broken {
                path: inside.into(),
                why: format!("links to {target}: {e}"),
            },
        };
    }
    if !meta.is_file() {
        return Fragment::Broken {
            path: inside.into(),
            why: "not a regular file (a FIFO, device or socket is never read)".into(),
        };
    }
    if meta.len() == 0 {
        return Fragment::Masked(inside.into());
    }
    Fragment::File(inside.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::SYSTEM_UNIT_PATH;
    use crate::testtree::Tree;

    #[test]
    fn priority_masking_aliases_templates_dropins_and_enablement() {
        let t = Tree::new("enum-all");
        let svc = "[Service]\nExecStart=/bin/true\n";
        t.file("/usr/lib/systemd/system/cron.service", svc);
        t.file("/etc/systemd/system/cron.service", svc); // overrides the packaged one
        t.file("/usr/lib/systemd/system/ssh.service", svc);
        t.link(
            "/etc/systemd/system/sshd.service",
            "/usr/lib/systemd/system/ssh.service",
        );
        t.file("/usr/lib/systemd/system/bluetooth.service", svc);
        t.link("/etc/systemd/system/bluetooth.service", "/dev/null");
        t.file("/usr/lib/systemd/system/getty@.service", svc);
        t.link(
            "/etc/systemd/system/getty.target.wants/getty@tty1.service",
            "/usr/lib/systemd/system/getty@.service",
        );
        t.link(
            "/etc/systemd/system/multi-user.target.wants/cron.service",
            "/usr/lib/systemd/system/cron.service",
        );
        t.file(
            "/usr/lib/systemd/system/cron.service.d/10-vendor.conf",
            "[Service]\n",
        );
        t.file(
            "/etc/systemd/system/cron.service.d/10-vendor.conf",
            "[Service]\n",
        ); // wins
        t.file(
            "/run/systemd/system/cron.service.d/50-evil.conf",
            "[Service]\n",
        );
        t.file("/etc/systemd/system/service.d/00-all.conf", "[Service]\n");
        t.file("/etc/systemd/system/getty@.service.d/x.conf", "[Service]\n");
        t.file("/etc/systemd/system/empty.service", "");
        t.link("/etc/systemd/system/loop.service", "loop.service");
        t.file("/etc/systemd/system/README", "not a unit");
        let root = Root::new(&t.0);
        let path: Vec<String> = SYSTEM_UNIT_PATH.iter().map(|s| s.to_string()).collect();
        let units = enumerate(&root, &path);
        let get = |n: &str| {
            units
                .iter()
                .find(|u| u.name == n)
                .unwrap_or_else(|| panic!("{n}: {units:#?}"))
        };
        let cron = get("cron.service");
        assert_eq!(
            cron.fragment,
            Fragment::File("/etc/systemd/system/cron.service".into())
        );
        assert_eq!(cron.overridden, ["/usr/lib/systemd/system/cron.service"]);
        assert_eq!(
            cron.dropins,
            [
                "/etc/systemd/system/service.d/00-all.conf",
                "/etc/systemd/system/cron.service.d/10-vendor.conf",
                "/run/systemd/system/cron.service.d/50-evil.conf",
            ]
        );
        assert_eq!(cron.wanted_by, ["multi-user.target"]);
        assert_eq!(
            get("sshd.service").fragment,
            Fragment::Alias {
                link: "/etc/systemd/system/sshd.service".into(),
                target: "ssh.service".into()
            }
        );
        assert_eq!(
            get("bluetooth.service").fragment,
            Fragment::Masked("/etc/systemd/system/bluetooth.service".into())
        );
        assert_eq!(
            get("empty.service").fragment,
            Fragment::Masked("/etc/systemd/system/empty.service".into())
        );
        let tty1 = get("getty@tty1.service");
        assert_eq!(
            tty1.fragment,
            Fragment::File("/usr/lib/systemd/system/getty@.service".into())
        );
        assert_eq!(tty1.wanted_by, ["getty.target"]);
        assert!(tty1
            .dropins
            .contains(&"/etc/systemd/system/getty@.service.d/x.conf".to_string()));
        assert!(
            matches!(get("loop.service").fragment, Fragment::Broken { ref why, .. } if why.contains("loop"))
        );
        assert!(units.iter().all(|u| u.name != "README"));
    }

    #[test]
    fn hostile_entries_are_listed_never_read() {
        let t = Tree::new("enum-hostile");
        std::fs::create_dir_all(t.0.join("etc/systemd/system")).unwrap();
        let fifo = t.0.join("etc/systemd/system/fifo.service");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        t.link("/etc/systemd/system/zero.service", "/dev/zero");
        t.link(
            "/etc/systemd/system/out.service",
            "../../../../../../../../etc/shadow",
        );
        t.file("/etc/systemd/system/big.service", &"x".repeat(5000));
        let root = Root::new(&t.0);
        let units = enumerate(&root, &["/etc/systemd/system".to_string()]);
        let get = |n: &str| units.iter().find(|u| u.name == n).unwrap();
        if ok {
            assert!(
                matches!(get("fifo.service").fragment, Fragment::Broken { ref why, .. } if why.contains("FIFO"))
            );
            assert_eq!(
                root.read_file("/etc/systemd/system/fifo.service", 1 << 20)
                    .unwrap_err()
                    .to_string(),
                "/etc/systemd/system/fifo.service: a FIFO, not a regular file; not read"
            );
        }
        // /dev/zero inside an image is the image's (absent here): never the host's device.
        assert!(matches!(
            get("zero.service").fragment,
            Fragment::Broken { .. }
        ));
        assert!(
            matches!(get("out.service").fragment, Fragment::Broken { ref why, .. } if why.contains("/etc/shadow"))
        );
        assert!(root
            .read_file("/etc/systemd/system/big.service", 100)
            .unwrap_err()
            .to_string()
            .contains("limit"));
        assert_eq!(
            root.read_file("/etc/systemd/system/big.service", 5000)
                .unwrap()
                .len(),
            5000
        );
    }

    #[test]
    fn unit_names_and_templates() {
        assert_eq!(unit_type("a.service"), Some("service"));
        assert_eq!(unit_type("a.conf"), None);
        assert_eq!(unit_type(".service"), None);
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("getty@.service"), None);
    }
}
